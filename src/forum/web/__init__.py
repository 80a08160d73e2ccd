"""The forum's HTTP API (FastAPI): routes, middleware, metrics, errors, `forum serve`."""
