"""Command-line interface: thin commands over the public API; the only place mapping errors to exit codes."""
