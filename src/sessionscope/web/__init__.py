"""The HTTP server: the RPC endpoint, export downloads and the dashboard's static files."""
