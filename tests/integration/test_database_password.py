"""The database password from DATABASE_PASSWORD_FILE reaches PostgreSQL byte for byte, whatever it contains.

The local PostgreSQL trusts 127.0.0.1, so a real server cannot tell a right password from a wrong one.
Two halves make the proof: a listener that speaks PostgreSQL's startup protocol up to a cleartext
password request records exactly what psycopg sends, and a role with that password on the real server
runs the migrations through ``tenant-worker db upgrade`` with nothing but the secret file.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tenant_worker.adapters.db import check_database, normalize_database_url
from tenant_worker.config import ConfigurationError, load_settings
from tests.conftest import BIN, PG_ADMIN_URL, free_port

# Every character that breaks naive URL building or conninfo quoting, plus a space at each end.
PASSWORD = " pg@:/%#?&=+'\"\\ pass "
SSL_REQUEST, GSSENC_REQUEST, PROTOCOL_3 = 80877103, 80877104, 196608
PG_HOST = urlsplit(PG_ADMIN_URL).netloc.rpartition("@")[2]


class PasswordRecorder:
    """A listener on 127.0.0.1 that asks every client for a cleartext password, records
    ``(user, database, password)`` and refuses the login, as PostgreSQL does for a wrong one."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self.logins: list[tuple[str, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> PasswordRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                self._login(conn)

    def _login(self, conn: socket.socket) -> None:
        def read(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise ConnectionError("client hung up")
                data += chunk
            return data

        while True:
            length, code = struct.unpack("!ii", read(8))
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                conn.sendall(b"N")  # no encryption offered: go on in plain text
                continue
            assert code == PROTOCOL_3, code
            fields = read(length - 8).split(b"\0")
            params = dict(zip(fields[0::2], fields[1::2], strict=False))
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind, length = struct.unpack("!ci", read(5))
        assert kind == b"p", kind
        password = read(length - 4).removesuffix(b"\0").decode("utf-8")
        user, database = params[b"user"].decode(), params.get(b"database", params[b"user"]).decode()
        self.logins.append((user, database, password))
        message = f'password authentication failed for user "{user}"'.encode()
        body = b"SFATAL\0VFATAL\0C28P01\0M" + message + b"\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(body) + 4) + body)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    """The secret as compose and Kubernetes mount it: the password and a trailing newline."""
    path = tmp_path / "postgres_password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


@pytest.fixture
def role_with_database() -> Iterator[tuple[str, str]]:
    """A login role whose password is :data:`PASSWORD` and an empty database it owns; both dropped afterwards."""
    name = f"tw_pw_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL} (run scripts/ensure_services.sh): {exc}")
    with admin:
        try:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(PASSWORD))
            )
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
            yield name, name
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_psycopg_sends_exactly_the_password_from_the_file(password_file: Path) -> None:
    with PasswordRecorder() as server:
        settings = load_settings(
            {
                "DATABASE_URL": f"postgresql://tw_app@127.0.0.1:{server.port}/tenant_worker",
                "DATABASE_PASSWORD_FILE": str(password_file),
            }
        )
        with pytest.raises(ConfigurationError, match="password authentication failed") as caught:
            check_database(settings.database_url)

    assert server.logins == [("tw_app", "tenant_worker", PASSWORD)]
    message = str(caught.value)
    assert f"tw_app:**@127.0.0.1:{server.port}/tenant_worker" in message, message
    for form in (PASSWORD.strip(), quote(PASSWORD, safe=""), quote(PASSWORD.strip(), safe=" +")):
        assert form not in message


def test_settings_from_the_password_file_connect_to_postgresql_as_the_role(
    password_file: Path, role_with_database: tuple[str, str]
) -> None:
    role, database = role_with_database
    settings = load_settings(
        {"DATABASE_URL": f"postgresql://{role}@{PG_HOST}/{database}", "DATABASE_PASSWORD_FILE": str(password_file)}
    )

    check_database(settings.database_url)
    engine = create_engine(normalize_database_url(settings.database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user, current_database()")).one() == (role, database)
    finally:
        engine.dispose()


def test_db_upgrade_runs_with_only_the_password_file(password_file: Path, role_with_database: tuple[str, str]) -> None:
    role, database = role_with_database
    env = {
        "PATH": str(BIN),
        "DATABASE_URL": f"postgresql://{role}@{PG_HOST}/{database}",
        "DATABASE_PASSWORD_FILE": str(password_file),
    }

    result = subprocess.run(
        [str(BIN / "tenant-worker"), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout
    with psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}") as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'tenants'").fetchone()
    assert owner == (role,)


def test_db_upgrade_with_a_missing_password_file_fails_clearly() -> None:
    env = {"PATH": str(BIN), "DATABASE_URL": "postgresql://tw_app@127.0.0.1:5432/tw", "DATABASE_PASSWORD_FILE": "/nope"}

    result = subprocess.run(
        [str(BIN / "tenant-worker"), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert result.stderr.strip() == "error: cannot read DATABASE_PASSWORD_FILE (/nope): No such file or directory"


@pytest.mark.parametrize("where", ["file", "url-parameter"])
def test_unreachable_postgresql_error_names_the_server_but_not_the_password(password_file: Path, where: str) -> None:
    port = free_port()
    env = {"DATABASE_URL": f"postgresql://tw_app@127.0.0.1:{port}/tw", "DATABASE_PASSWORD_FILE": str(password_file)}
    if where == "url-parameter":
        env = {"DATABASE_URL": env["DATABASE_URL"] + "?password=" + quote(PASSWORD, safe="")}

    with pytest.raises(ConfigurationError, match=f"cannot connect to PostgreSQL at .*127.0.0.1:{port}/tw") as caught:
        check_database(load_settings(env).database_url)

    message = str(caught.value)
    assert "tw_app:**@" in message or "password=**" in message, message
    for form in (PASSWORD.strip(), quote(PASSWORD, safe=""), quote(PASSWORD.strip(), safe=" +"), quote_plus(PASSWORD)):
        assert form not in message, message
