"""The HTTP control plane: a FastAPI app on the same services as the worker and the CLI.

``app.create_app(services)`` builds it; ``tenant-worker api`` serves it with uvicorn. Handlers are thin
(parse, call one service, shape the answer); authentication, the per-key rate limit and
``Idempotency-Key`` are applied to every route in one place (``auth``, ``idempotency``), and every
error is an RFC 9457 ``application/problem+json`` document (``problems``).
"""
