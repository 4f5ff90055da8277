"""Admin routes for a tenant's API keys: create (the key is in this answer only), list, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from tenant_worker.api.deps import admin_scope, services_of
from tenant_worker.bootstrap import Services
from tenant_worker.services import api_keys

router = APIRouter(prefix="/v1/tenants/{slug}/api-keys", tags=["admin: API keys"], dependencies=[Depends(admin_scope)])
ServicesDep = Annotated[Services, Depends(services_of)]


class KeyIn(BaseModel):
    """A new key's label."""

    name: str = Field(default="", max_length=200, description="what the key is for, e.g. billing-prod")


@router.post("", status_code=201, summary="Create an API key for the tenant (shown once)")
def create_key(slug: str, body: KeyIn, services: ServicesDep) -> dict[str, Any]:
    """The whole key is in ``key``; only its hash is stored, so it cannot be shown again."""
    created = api_keys.create_key(services.uow, services.api_keys, slug, body.name)
    return {"key": created.secret, **api_keys.KeyListing(slug, created.key).as_dict()}


@router.get("", summary="List the tenant's API keys (revoked ones too)")
def list_keys(slug: str, services: ServicesDep) -> list[dict[str, Any]]:
    """Prefixes, names and use; never secrets."""
    return [k.as_dict() for k in api_keys.list_keys(services.uow, services.api_keys, slug)]


@router.delete("/{prefix}", summary="Revoke an API key")
def revoke_key(slug: str, prefix: str, services: ServicesDep) -> dict[str, Any]:
    """Requests with the key are refused from now on; revoking again changes nothing."""
    return api_keys.revoke_key(services.uow, services.api_keys, prefix, services.clock, slug).as_dict()
