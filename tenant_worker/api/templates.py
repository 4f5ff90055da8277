"""Tenant routes for SMS templates: list them, and put one per (window, locale) as
``tenant-worker tenant template`` saves it, validated, with a preview and what it costs.

A template is addressed by its scope: ``/templates/{window}/{locale}``, each ``any`` or a value
(``/templates/any/any`` is the default every reminder falls back to; ``/templates/3/nl`` is used for
the 3-day reminder of a Dutch tenant). The most specific template wins when an SMS is rendered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from tenant_worker.api.deps import TenantScope, services_of, tenant_scope
from tenant_worker.api.problems import Problem
from tenant_worker.bootstrap import Services
from tenant_worker.domain.records import Template
from tenant_worker.domain.templates import PLACEHOLDERS
from tenant_worker.services import template_editing

router = APIRouter(prefix="/v1/tenants/{slug}/templates", tags=["tenant: templates"])
ScopeDep = Annotated[TenantScope, Depends(tenant_scope)]
ServicesDep = Annotated[Services, Depends(services_of)]
ANY = "any"
WindowParam = Annotated[str, PathParam(description="days before expiry, or `any`", examples=["3", "any"])]
LocaleParam = Annotated[str, PathParam(description="a locale such as `nl`, or `any`", examples=["nl", "any"])]


class TemplateOut(BaseModel):
    """A stored template and its scope (``null``: any)."""

    window: int | None
    locale: str | None
    body: str


class TemplatesOut(BaseModel):
    """The tenant's templates, the placeholders they may use, and the tenant's cap on segments."""

    templates: list[TemplateOut]
    placeholders: dict[str, str]
    max_segments: int


class TemplateIn(BaseModel):
    """The template text; placeholders are written ``{customer_name}``, literal braces ``{{ }}``."""

    body: str = Field(examples=["Hi {customer_name}, your {plan} expires on {expires_on}. Pay {amount} {currency}."])


class Cost(BaseModel):
    """What an SMS costs on the wire: its encoding, its length in that encoding's units, its segments."""

    encoding: str
    length: int | None = None
    segments: int


class SavedTemplateOut(TemplateOut):
    """The saved template, rendered for a sample customer, with the sample's cost and the worst case
    (every placeholder at its longest) against the tenant's ``max_segments``."""

    preview: str
    cost: Cost
    worst_case: Cost
    max_segments: int


def _scope(window: str, locale: str) -> tuple[int | None, str | None]:
    if window != ANY and not window.isdigit():
        raise Problem(422, "Invalid input", f"window {window!r} must be a number of days or 'any'")
    return (None if window == ANY else int(window)), (None if locale == ANY else locale)


def _out(template: Template) -> TemplateOut:
    return TemplateOut(window=template.window_days, locale=template.locale, body=template.body)


@router.get("", summary="The tenant's SMS templates and the placeholders they may use")
def list_templates(scope: ScopeDep, services: ServicesDep) -> TemplatesOut:
    """Ordered by window, then locale; ``null`` means any."""
    tenant, templates = template_editing.templates_of(services.uow, scope.slug)
    return TemplatesOut(
        templates=[_out(t) for t in templates], placeholders=dict(PLACEHOLDERS), max_segments=tenant.max_segments
    )


@router.put("/{window}/{locale}", summary="Create or replace the template of a window and locale")
def put_template(
    window: WindowParam, locale: LocaleParam, body: TemplateIn, scope: ScopeDep, services: ServicesDep
) -> SavedTemplateOut:
    """Validated before it is saved: an unknown placeholder, a syntax error, a window the tenant does
    not have, or a worst case over ``max_segments`` is a 422 problem naming every reason."""
    window_days, locale_name = _scope(window, locale)
    with services.uow() as tx:
        shown = template_editing.save_with_preview(tx, scope.slug, body.body, window_days, locale_name)
    return SavedTemplateOut(
        **_out(shown.template).model_dump(),
        preview=shown.preview,
        cost=Cost(encoding=shown.encoding, length=shown.length, segments=shown.segments),
        worst_case=Cost(encoding=shown.worst_case_encoding, segments=shown.worst_case_segments),
        max_segments=shown.max_segments,
    )
