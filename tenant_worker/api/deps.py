"""The dependencies every router uses: the services, and who may act on what.

``tenant_scope`` guards ``/v1/tenants/{slug}/...``: a tenant key opens only its own tenant, and
another tenant's slug answers exactly as an unknown one does (404), so a key cannot learn which
tenants exist. Admin keys open every tenant. ``admin_scope`` guards the operator's routes: no key is
401, a tenant key 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenant_worker.api.auth import PRINCIPAL, Principal
from tenant_worker.api.problems import Problem
from tenant_worker.bootstrap import Services
from tenant_worker.domain.model import ValidationError

# Declares the scheme in the OpenAPI document (the Guard middleware does the checking).
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="An admin key or a tenant's API key")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class TenantScope:
    """The tenant a request acts on, after the key was checked against it."""

    tenant_id: int
    slug: str


def services_of(request: Request) -> Services:
    """The process's services (``app.state.services``)."""
    services: Services = request.app.state.services
    return services


def principal_of(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The caller, or 401 without a valid key."""
    principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL)
    if principal is None:
        present = bool(request.headers.get("authorization"))
        detail = "the API key is invalid or revoked" if present else "send an API key: Authorization: Bearer <key>"
        raise Problem(401, "Unauthorized", detail, _CHALLENGE)
    return principal


def admin_scope(principal: Annotated[Principal, Depends(principal_of)]) -> None:
    """Only an admin key passes; a tenant key is 403."""
    if not principal.admin:
        raise Problem(403, "Forbidden", "this needs an admin key; a tenant key manages only its own tenant")


def tenant_scope(
    slug: Annotated[str, Path(description="The tenant's slug")],
    principal: Annotated[Principal, Depends(principal_of)],
    services: Annotated[Services, Depends(services_of)],
) -> TenantScope:
    """The tenant of the path, if the key may act on it; else 404, as for a tenant that does not exist."""
    try:
        with services.uow() as tx:
            tenant = tx.catalog.find_tenant(slug)
    except ValidationError:
        tenant = None
    if tenant is None or not (principal.admin or principal.tenant_id == tenant.id):
        raise Problem(404, "Not found", f"no tenant {slug!r}")
    return TenantScope(tenant.id, tenant.slug)
