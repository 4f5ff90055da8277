"""The layering the README's Architecture section promises, checked on the source: imports point inward.

Parsed with ``ast`` (no import side effects), so a service that starts importing SQLAlchemy, or a domain
module that reaches for an adapter, fails here before it can spread.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tenant_worker"
DRIVERS = (
    "sqlalchemy", "psycopg", "redis", "celery", "kombu", "redbeat", "alembic", "sentry_sdk", "messagebird",
    "fastapi", "starlette", "uvicorn", "prometheus_client", "flower", "tornado",
)  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (functions included)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def modules_of(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


@pytest.mark.parametrize("path", modules_of("services"), ids=lambda p: p.name)
def test_services_import_no_database_broker_or_cache_library(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in DRIVERS}
    assert not bad, f"services/{path.name} imports {sorted(bad)}: take a port instead"


@pytest.mark.parametrize("path", modules_of("services"), ids=lambda p: p.name)
def test_services_never_reach_the_sql_or_celery_adapters(path: Path) -> None:
    # Pure helpers: parsing (phones, CSV) and CLDR data through Babel (cldr).
    allowed = {"tenant_worker.adapters.phones", "tenant_worker.adapters.csv_files", "tenant_worker.adapters.cldr"}
    adapters = {m for m in imported_modules(path) if m.startswith("tenant_worker.adapters.")}
    bad = {m for m in adapters if not any(m.startswith(a) for a in allowed)}
    bad |= {m for m in imported_modules(path) if m in ("tenant_worker.bootstrap", "tenant_worker.celery_app")}
    assert not bad, f"services/{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules_of("domain"), ids=lambda p: p.name)
def test_the_domain_imports_only_the_standard_library_and_itself(path: Path) -> None:
    ours = {m for m in imported_modules(path) if m.startswith("tenant_worker")}
    inward = ("tenant_worker.domain", "tenant_worker.constants")  # constants: names only, stdlib-free
    ours -= {"tenant_worker"}  # the package itself, as in `from tenant_worker import constants`
    assert all(m.startswith(inward) for m in ours), f"domain/{path.name} imports {sorted(ours)}"
    assert not {m for m in imported_modules(path) if m.split(".")[0] in DRIVERS}


@pytest.mark.parametrize("path", modules_of("api"), ids=lambda p: p.name)
def test_api_handlers_hold_no_sql(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in ("sqlalchemy", "psycopg")}
    bad |= {
        m for m in imported_modules(path) if m.startswith(("tenant_worker.adapters.orm", "tenant_worker.adapters.sql"))
    }
    assert not bad, f"api/{path.name} imports {sorted(bad)}: call a service with ports from bootstrap"
