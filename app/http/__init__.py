"""The HTTP layer: the ASGI app, its routes, middleware and probes.

The FastAPI app with its scoring fast path (`application`), the routes (`routes`, `probes`,
`openapi`), and the middleware a request passes: request context and metrics
(`middleware`), tracing (`tracing`), admission and shedding (`admission`), authentication
(`auth`) and size limits (`limits`). Translates HTTP to the runtime and back.
"""
