"""Who is calling: the ``Authorization: Bearer`` key resolved once per request, and the per-key limit.

:class:`Guard` is ASGI middleware around every route: it turns the key into a :class:`Principal` (an
admin key, or a tenant's key) stored in the request's state, where ``deps`` enforces what each route
needs and ``idempotency`` finds the scope of a remembered answer, and it answers 429 with
``Retry-After`` to a key over its rate. A missing or unknown key is not refused here: routes decide
(health probes and signed webhooks need none).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from tenant_worker.api.problems import Problem, problem_response
from tenant_worker.bootstrap import Services
from tenant_worker.domain.requests import RequestStoreUnavailable
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.services import api_keys

PRINCIPAL = "principal"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``key_id`` names its rate bucket and never reveals the key: a tenant
    key's visible prefix, or a digest of an admin key."""

    key_id: str
    tenant_id: int | None = None

    @property
    def admin(self) -> bool:
        """Whether this is an admin key (it acts on every tenant)."""
        return self.tenant_id is None

    @property
    def idempotency_scope(self) -> str:
        """Where its ``Idempotency-Key`` values live: per tenant, or per admin key."""
        return self.key_id if self.admin else f"tenant:{self.tenant_id}"


def bearer_token(scope: Scope) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    scheme, _, token = (Headers(scope=scope).get("authorization") or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def resolve(services: Services, token: str) -> Principal | None:
    """The principal ``token`` authenticates, or None (blocking: call it in a thread)."""
    if api_keys.is_admin_key(token, services.settings.admin_api_keys):
        return Principal("admin:" + hashlib.sha256(token.encode()).hexdigest()[:16])
    key = api_keys.authenticate(services.api_keys, token, services.clock)
    return None if key is None else Principal(key.prefix, key.tenant_id)


class Guard:
    """Resolves the caller and applies the per-key rate limit (see the module docs)."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app, self.services = app, services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        try:
            principal = await run_in_threadpool(resolve, self.services, token) if token else None
            wait = await run_in_threadpool(self.services.request_limiter.acquire, principal.key_id) if principal else 0
        except (StorageUnavailable, RequestStoreUnavailable):
            problem = Problem(503, "Service unavailable", "a backing store is unreachable; retry later")
            await problem_response(problem)(scope, receive, send)
            return
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            detail = f"this API key is over its rate limit; retry in {retry} s"
            refusal = problem_response(Problem(429, "Too many requests", detail, {"Retry-After": retry}))
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        await self.app(scope, receive, send)
