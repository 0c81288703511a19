"""Server-side JavaScript functions: QuickJS in a pool of worker processes."""
