"""sblite: a self-hosted backend in one Python process, wire-compatible with StaticBackend."""

__version__ = "0.1.0"
