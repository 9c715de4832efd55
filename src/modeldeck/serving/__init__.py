"""The HTTP server: the only place that maps errors to status codes."""
