"""HTTP adapters: thin route modules over the services."""
