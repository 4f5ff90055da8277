"""Errors as RFC 9457 problem documents (``application/problem+json``), for every route and failure.

Handlers raise :class:`Problem`; the handlers installed by :func:`install` turn it, FastAPI's
validation errors, unknown routes and methods, the domain's validation errors and anything unexpected
into ``{type, title, status, detail}``. An unexpected error is logged (redacted, with its traceback,
for the operator) and answered with a fixed text: no traceback, no exception message, no secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenant_worker.config import Settings, redact_text, secrets_of
from tenant_worker.domain.api_keys import UnknownApiKey
from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.domain.templates import TemplateError
from tenant_worker.domain.windows import WindowsError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("tenant_worker.api")


class Problem(Exception):
    """An answer other than success: raise it from a handler or a dependency."""

    def __init__(
        self, status: int, title: str, detail: str = "", headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail = status, title, detail
        self.headers = dict(headers or {})
        self.extra = extra


def problem_response(problem: Problem) -> JSONResponse:
    """The problem as its JSON document (``type`` is ``about:blank``: the status says it all)."""
    body = {"type": "about:blank", "title": problem.title, "status": problem.status, "detail": problem.detail}
    body.update(problem.extra)
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def _field(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location if part != "body") or "request"


def validation_problem(exc: RequestValidationError) -> Problem:
    """FastAPI's 422 for a malformed request, as a problem listing each invalid field; the invalid
    value itself is left out (it may be a phone number, or a key pasted in the wrong field)."""
    errors = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Problem(422, "Invalid request", detail, errors=errors)


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Not found"},
        "status": {"type": "integer", "example": 404},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {}, "description": "each invalid field (422)"},
    },
}


def document_problems(schema: dict[str, Any]) -> None:
    """Describe errors in the OpenAPI document as they are answered: every operation's 422 and any
    other error (``default``) are ``application/problem+json`` (FastAPI's own 422 schema is not)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid request", "content": content}
            responses["default"] = {"description": "An error, as a problem document", "content": content}


def install(app: FastAPI, settings: Settings) -> None:
    """Answer every error of ``app`` as a problem document."""

    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(Problem(exc.status_code, title, detail, dict(exc.headers or {})))

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(exc))

    async def on_invalid(_: Request, exc: Exception) -> JSONResponse:
        problems = getattr(exc, "problems", None) or [str(exc)]
        detail = "; ".join(problems)
        if isinstance(exc, UnknownApiKey) or (isinstance(exc, ValidationError) and _unknown_tenant(problems)):
            return problem_response(Problem(404, "Not found", detail))
        return problem_response(Problem(422, "Invalid input", detail, errors=problems))

    async def on_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("storage unavailable: %s", redact_text(str(exc), secrets_of(settings)))
        return problem_response(Problem(503, "Service unavailable", "the database is unreachable; retry later"))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unexpected error in %s %s: %s",
            request.method,
            request.url.path,
            redact_text(f"{type(exc).__name__}: {exc}", secrets_of(settings)),
        )
        return problem_response(Problem(500, "Internal server error", "an unexpected error occurred; it was logged"))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for invalid in (ValidationError, TemplateError, WindowsError, UnknownApiKey):
        app.add_exception_handler(invalid, on_invalid)
    app.add_exception_handler(StorageUnavailable, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)


def _unknown_tenant(problems: list[str]) -> bool:
    """The catalog's "unknown tenant 'x'" is a missing resource, not invalid input."""
    return len(problems) == 1 and problems[0].startswith("unknown tenant")
