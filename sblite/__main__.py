"""Entry point for `python -m sblite`."""

from sblite.cli import main

main()
