"""The HTTP layer: the API's routers, their dependencies, the problem+json handlers and the request limits."""
