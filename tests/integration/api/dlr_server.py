"""The API server of the webhook tests: a signing key, a public URL that is not its own address (as
behind a reverse proxy: requests reach 127.0.0.1, signatures name the public URL), and Sentry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tenant_worker_dev.emulators.sentry import SentryRecorder
from tests.integration.api.conftest import ApiServer, api_env, running_api

SIGNING_KEY = "mb-signing-key-" + uuid.uuid4().hex
PUBLIC = "https://reminders.example.test"


@pytest.fixture(scope="session")
def dlr_api(
    database_url: str, redis_url: str, sentry_recorder: SentryRecorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API server that checks webhooks signed with :data:`SIGNING_KEY` on :data:`PUBLIC`."""
    env = api_env(
        database_url, redis_url, MESSAGEBIRD_SIGNING_KEY=SIGNING_KEY, PUBLIC_BASE_URL=PUBLIC,
        SENTRY_DSN=sentry_recorder.dsn, STOP_KEYWORDS="STOP,STOPP,ARRET,UITSCHRIJVEN",
    )  # fmt: skip
    with running_api(env, tmp_path_factory.mktemp("dlr") / "api.log") as server:
        yield server
