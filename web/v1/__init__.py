"""Version 1 of the HTTP API: one module per resource."""
