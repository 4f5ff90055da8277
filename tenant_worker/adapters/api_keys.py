"""Tenant API keys on PostgreSQL (table ``api_keys``, migration 0009): the ``ApiKeyStore`` port.

Each call is its own short transaction: keys are looked up on every HTTP request, and that must not
hold a session open for the length of the request. A lost connection leaves as ``StorageUnavailable``,
as from the unit of work, so the API answers 503 rather than 500.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.orm import ApiKeyRow
from tenant_worker.adapters.sql_storage import is_connection_error
from tenant_worker.domain.api_keys import ApiKey
from tenant_worker.domain.storage import StorageUnavailable


def _record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.tenant_id, row.prefix, row.name, row.created_at, row.last_used_at, row.revoked_at)


@contextlib.contextmanager
def _connection_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if is_connection_error(exc):
            raise StorageUnavailable(f"database connection lost ({type(exc.orig or exc).__name__})") from exc
        raise


class SqlApiKeyStore:
    """The ``ApiKeyStore`` port on the ``api_keys`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(self, tenant_id: int, prefix: str, secret_hash: str, name: str) -> ApiKey:
        """Insert the key (the database stamps ``created_at``)."""
        with _connection_errors(), self._sessions.begin() as session:
            row = ApiKeyRow(tenant_id=tenant_id, prefix=prefix, secret_hash=secret_hash, name=name)
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(row)

    def list(self, tenant_ids: Sequence[int] | None = None) -> list[ApiKey]:
        """Keys oldest first, optionally of some tenants only."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if tenant_ids is not None:
            query = query.where(ApiKeyRow.tenant_id.in_(list(tenant_ids)))
        with _connection_errors(), self._sessions() as session:
            return [_record(row) for row in session.scalars(query)]

    def revoke(self, prefix: str, at: dt.datetime) -> ApiKey | None:
        """Set ``revoked_at`` once; the key as it is now, or None."""
        with _connection_errors(), self._sessions.begin() as session:
            session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.prefix == prefix, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))
            return None if row is None else _record(row)

    def find(self, secret_hash: str) -> ApiKey | None:
        """The key with this hash (the unique index makes it one index lookup)."""
        with _connection_errors(), self._sessions() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_hash == secret_hash))
            return None if row is None else _record(row)

    def touch(self, key_id: int, at: dt.datetime) -> None:
        """Move ``last_used_at`` forward (never back: concurrent requests may finish out of order)."""
        with _connection_errors(), self._sessions.begin() as session:
            session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id)
                .values(last_used_at=func.greatest(func.coalesce(ApiKeyRow.last_used_at, at), at))
            )
