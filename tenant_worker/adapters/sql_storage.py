"""The unit of work on PostgreSQL: one SQLAlchemy session and transaction per ``with`` block.

Implements ``domain.storage.UnitOfWork``: the catalog, the per-tenant ledgers and the recovery tick's
maintenance statements all share the block's session, so they commit or roll back together. Connection
failures (a failover, ``pg_terminate_backend``, a network cut) leave the block as
:class:`~tenant_worker.domain.storage.StorageUnavailable`, which the services know how to wait out;
any other database error (a constraint, a faulty statement) propagates unchanged.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.catalog import SqlCatalog
from tenant_worker.adapters.delivery_receipts import SqlDeliveryReceipts
from tenant_worker.adapters.ledger_admin import SqlLedger
from tenant_worker.adapters.ledger_repair import SqlLedgerMaintenance
from tenant_worker.domain.storage import StorageUnavailable, UnitOfWorkFactory


def is_connection_error(exc: BaseException) -> bool:
    """Whether a database error means the connection is gone (worth retrying on a fresh one)."""
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    )


class SqlUnitOfWork:
    """One transaction over the SQL catalog and ledger (``with SqlUnitOfWork(sessions) as uow: ...``)."""

    catalog: SqlCatalog
    maintenance: SqlLedgerMaintenance
    receipts: SqlDeliveryReceipts

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The block's session (for tests and adapters that need raw SQL; services never do)."""
        if self._session is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._session

    def __enter__(self) -> SqlUnitOfWork:
        self._session = self._sessions()
        self._session.begin()
        self.catalog = SqlCatalog(self._session)
        self.maintenance = SqlLedgerMaintenance(self._session)
        self.receipts = SqlDeliveryReceipts(self._session)
        return self

    def ledger(self, tenant_id: int) -> SqlLedger:
        """The tenant's ledger in this transaction."""
        return SqlLedger(self.session, tenant_id)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self.session, None
        try:
            if exc is None:
                session.commit()
            else:
                session.rollback()
        except DBAPIError as failure:
            session.close()
            if is_connection_error(failure):
                raise StorageUnavailable(_describe(failure)) from failure
            raise
        session.close()
        if exc is not None and is_connection_error(exc):
            raise StorageUnavailable(_describe(exc)) from exc


def _describe(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return f"database connection lost ({type(original or exc).__name__})"


def sql_unit_of_work(sessions: sessionmaker[Session]) -> UnitOfWorkFactory:
    """The unit-of-work factory the services take, on ``sessions``."""
    return lambda: SqlUnitOfWork(sessions)
