"""Why a command stopped, and the exit status that says so (the README's "Exit statuses" table).

A supervisor or script can act on the status alone: 4 is worth retrying as it is, 2 and 5 need an
operator (fix a setting, run the migrations) first. The two exceptions below subclass
:class:`ConfigurationError` so code that already catches that still stops cleanly; their messages,
like every :class:`ConfigurationError`'s, never contain a secret.
"""

from __future__ import annotations

from tenant_worker.config import ConfigurationError

EXIT_OK = 0
# The command ran but did not finish all of its work (it says what), or failed unexpectedly.
EXIT_FAILED = 1
# Invalid input or configuration, wrong credentials included: retrying the same thing cannot help.
EXIT_INVALID = 2
# `tenant-worker beat` lost its leader lock to another beat (restart it: it waits as the standby).
EXIT_LOCK_LOST = 3
# Redis or PostgreSQL cannot be reached now (down, refusing connections, timing out): retry later.
EXIT_UNAVAILABLE = 4
# The database does not exist or its migrations are not applied: run `tenant-worker db upgrade`.
EXIT_NOT_READY = 5
EXIT_INTERRUPTED = 130


class ServiceUnavailable(ConfigurationError):
    """Redis or PostgreSQL cannot be reached; the same command may work once it is back."""

    exit_status = EXIT_UNAVAILABLE


class DatabaseNotReady(ConfigurationError):
    """The database is missing, or its schema is not at the migration this version needs."""

    exit_status = EXIT_NOT_READY
