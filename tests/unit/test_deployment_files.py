"""Static checks of the deployment files: Dockerfile, .dockerignore and docker-compose.yml.

No Docker engine runs in CI, so these tests read the files and hold them against the code they deploy:
the CLI's dispatch, Celery's own option parsers, the settings loader and the package metadata. A typo
in a compose command, a secret in an ENV line or a file missing from the build context fails here
rather than on the first deploy.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.beat import beat as celery_beat
from celery.bin.worker import worker as celery_worker
from sqlalchemy.engine import make_url

from tenant_worker import cli, cli_api, cli_errors
from tenant_worker.adapters.db import normalize_database_url
from tenant_worker.bootstrap import Services
from tenant_worker.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
WORKER_POOLS = ("worker-shards-a", "worker-shards-b", "worker-control")
APP_SERVICES = ("migrate", *WORKER_POOLS, "beat", "api")
LONG_RUNNING = (*WORKER_POOLS, "beat")
HANDLERS = {"migrate": "cmd_db_upgrade", "beat": "cmd_beat", "api": "cmd_api"} | {
    pool: "cmd_worker" for pool in WORKER_POOLS
}
CELERY_COMMANDS: dict[str, click.Command] = {"worker": celery_worker, "beat": celery_beat}
# The Celery program behind each long-running service.
PROGRAMS = {"beat": "beat"} | {pool: "worker" for pool in WORKER_POOLS}
CREDENTIAL_WORDS = ("PASSWORD", "KEY", "DSN", "SECRET", "TOKEN")

# --- helpers ---------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as data (PyYAML resolves the ``<<: *app`` merge keys like compose does)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def service(name: str) -> dict[str, Any]:
    """One service of the compose file."""
    services: dict[str, dict[str, Any]] = load_compose()["services"]
    return services[name]


class MissingVariableError(LookupError):
    """A ``${VAR:?message}`` reference whose variable is unset or empty: compose refuses to start."""


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Resolve ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` and ``$$`` as compose does."""

    def resolve(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        value = env.get(match["name"] or match["bare"], "")
        if not value and match["op"] == ":?":
            raise MissingVariableError(match["arg"])
        if not value and match["op"] == ":-":
            return match["arg"]
        return value

    return _VARIABLE.sub(resolve, text)


def container_environment(name: str, host_env: Mapping[str, str]) -> dict[str, str]:
    """The environment a service's container receives when compose runs with ``host_env``."""
    return {key: interpolate(str(value), host_env) for key, value in service(name)["environment"].items()}


def secret_mounts(name: str) -> dict[str, str]:
    """Where each compose secret of a service appears in its container: path -> secret name."""
    mounts = {}
    for entry in service(name).get("secrets", []):
        long_form = {"source": entry} if isinstance(entry, str) else entry
        target = long_form.get("target", long_form["source"])
        mounts[target if target.startswith("/") else f"/run/secrets/{target}"] = long_form["source"]
    return mounts


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of ``(INSTRUCTION, argument)``, continuation lines joined, comments dropped."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, argument = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), " ".join(argument.split())))
    return stages


def instructions(keyword: str, stage: list[tuple[str, str]] | None = None) -> list[str]:
    """Arguments of every ``keyword`` instruction in ``stage`` (default: the whole Dockerfile)."""
    lines = stage if stage is not None else [i for s in dockerfile_stages() for i in s]
    return [argument for kw, argument in lines if kw == keyword]


def exec_form(keyword: str) -> list[str]:
    """The JSON (exec-form) argument of the runtime stage's last ``keyword`` instruction."""
    value: list[str] = json.loads(instructions(keyword, dockerfile_stages()[-1])[-1])
    return value


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded_from_build_context(path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins; ``!`` re-includes."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _glob_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def subcommands() -> set[str]:
    """The first words ``tenant-worker`` accepts."""
    parser = cli.build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def dispatch(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, argparse.Namespace]:
    """Run ``tenant-worker argv`` through the real ``main`` with the handlers replaced by recorders."""
    calls: list[tuple[str, argparse.Namespace]] = []

    def recorder(name: str) -> cli.Handler:
        def record(args: argparse.Namespace, services: Services) -> int:
            calls.append((name, args))
            return 0

        return record

    for name in HANDLERS.values():
        monkeypatch.setattr(cli_api if name == "cmd_api" else cli, name, recorder(name))
    # No services here: what happens when they are missing is tests/e2e/test_cli_faults.py's business.
    monkeypatch.setattr(cli_errors, "preflight", lambda *_: None)
    assert cli.main(argv) == 0
    [call] = calls
    return call


def celery_context(program: str, options: list[str]) -> click.Context:
    """Parse ``options`` with Celery's own ``celery worker``/``celery beat`` parser; raises on a bad option."""
    obj = CLIContext(app=Celery(set_as_current=False), no_color=True, workdir=None)
    return CELERY_COMMANDS[program].make_context(program, list(options), obj=obj)


def duration_seconds(text: str) -> float:
    """A compose duration such as ``1m30s`` in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert "".join(number + unit for number, unit in parts) == text, f"not a compose duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


# --- Dockerfile ------------------------------------------------------------------------------------


def test_every_stage_is_python_3_11_slim_so_the_copied_venv_finds_its_interpreter() -> None:
    bases = [argument.split()[0] for argument in instructions("FROM")]
    assert len(bases) >= 2, "expected a builder stage and a runtime stage"
    assert all(base.startswith("python:3.11") for base in bases), bases
    assert len(set(bases)) == 1, f"the venv's python symlink needs the same base in every stage: {bases}"


def test_runtime_stage_gets_the_venv_from_the_builder_and_not_the_source_tree() -> None:
    runtime = dockerfile_stages()[-1]
    copies = instructions("COPY", runtime)
    assert any(c.startswith("--from=builder") and "/opt/venv" in c for c in copies), copies
    assert all(c.startswith("--from=") for c in copies), f"runtime stage copies from the context: {copies}"


def test_builder_installs_the_project_from_its_pyproject() -> None:
    builder = dockerfile_stages()[0]
    assert any(re.search(r"pip install [^&;|]*?(?<=\s)\.(\s|$)", run) for run in instructions("RUN", builder))
    assert "pyproject.toml" in " ".join(instructions("COPY", builder))


def test_image_and_dev_venv_install_the_same_pinned_versions() -> None:
    builder = dockerfile_stages()[0]
    assert any(re.search(r"pip install [^&;|]*-c constraints\.txt", run) for run in instructions("RUN", builder))
    assert "constraints.txt" in " ".join(instructions("COPY", builder))
    assert "-c constraints.txt -e '.[dev]'" in (ROOT / "Makefile").read_text(encoding="utf-8")
    pins = [
        line for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    ]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+!-]+", pin) for pin in pins), pins
    pinned = {pin.split("==")[0].lower().replace("_", "-") for pin in pins}
    # Every direct dependency is pinned (PEP 508 names up to the first version or extra marker).
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in declared}
    assert names <= pinned, names - pinned


def test_image_runs_as_a_non_root_user() -> None:
    users = instructions("USER", dockerfile_stages()[-1])
    assert users, "the runtime stage never switches away from root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]


def test_beat_can_write_its_schedule_file_in_the_working_directory() -> None:
    runtime = dockerfile_stages()[-1]
    workdir = instructions("WORKDIR", runtime)[-1]
    useradd = [run for run in instructions("RUN", runtime) if "useradd" in run]
    assert useradd, "the runtime stage creates no user"
    assert f"--home-dir {workdir}" in useradd[0] and "--create-home" in useradd[0], useradd[0]


def test_entrypoint_is_the_console_script_declared_in_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert exec_form("ENTRYPOINT") == ["tenant-worker"]
    assert pyproject["project"]["scripts"]["tenant-worker"] == "tenant_worker.cli:main"


def test_default_command_starts_a_worker_with_options_celery_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    command = exec_form("CMD")
    assert command[0] in subcommands()
    handler, args = dispatch(command, monkeypatch)
    assert handler == "cmd_worker"
    assert celery_context("worker", args.celery_args).args == []


def test_python_output_is_unbuffered_so_logs_reach_docker_immediately() -> None:
    assert any(re.search(r"\bPYTHONUNBUFFERED=1\b", env) for env in instructions("ENV"))


def test_no_env_or_arg_line_bakes_a_credential_into_the_image() -> None:
    for line in instructions("ENV") + instructions("ARG"):
        names = re.findall(r"(?:^|\s)([A-Za-z_]\w*)(?==|\s|$)", line)
        leaked = [name for name in names if any(word in name.upper() for word in CREDENTIAL_WORDS)]
        assert not leaked, f"credential-like variable in the image: {line}"
        assert not re.search(r"://[^/\s:@]*:[^@\s]+@", line), f"URL with a password in the image: {line}"


def test_builder_copies_only_the_runtime_package_not_the_development_one() -> None:
    builder = dockerfile_stages()[0]
    sources = [w for copy in instructions("COPY", builder) for w in copy.split()[:-1] if not w.startswith("--")]
    directories = [source for source in sources if (ROOT / source).is_dir()]
    assert directories == ["tenant_worker"], f"the image gets more than the runtime package: {sources}"
    assert not (ROOT / "tenant_worker" / "emulators").exists(), "the emulators are back in the runtime package"


def wheel_include() -> list[str]:
    """``[tool.setuptools.packages.find] include``: the patterns that pick the wheel's packages."""
    include: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    return include


def wheel_packages() -> list[str]:
    """The packages ``pip wheel .`` puts in the wheel: setuptools' namespace discovery (every directory of
    ``.py`` files under the project root) filtered by ``[tool.setuptools.packages.find] include``."""
    include = wheel_include()
    skipped = {".git", ".venv", "build", "dist", "__pycache__"}
    found = set()
    for module in ROOT.rglob("*.py"):
        parts = module.relative_to(ROOT).parent.parts
        if parts and not skipped.intersection(parts) and all(part.isidentifier() for part in parts):
            found.update(".".join(parts[: n + 1]) for n in range(len(parts)))
    return sorted(name for name in found if any(fnmatch.fnmatchcase(name, pattern) for pattern in include))


def test_wheel_holds_the_runtime_package_and_no_emulators() -> None:
    packages = wheel_packages()
    assert "tenant_worker" in packages and "tenant_worker.adapters" in packages, packages
    assert all(name == "tenant_worker" or name.startswith("tenant_worker.") for name in packages), packages
    assert not [name for name in packages if "emulators" in name], packages
    include = wheel_include()
    # Even if the development package moved next to tenant_worker, the include would leave it out.
    for name in ("tenant_worker_dev", "tenant_worker_dev.emulators"):
        assert not any(fnmatch.fnmatchcase(name, pattern) for pattern in include), (name, include)


def test_dev_venv_installs_the_development_package_for_tests_demo_and_benchmarks() -> None:
    assert (ROOT / "dev" / "tenant_worker_dev" / "emulators" / "messagebird.py").is_file()
    assert "-e ./dev" in (ROOT / "Makefile").read_text(encoding="utf-8")


# --- .dockerignore ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        ".env",
        "secrets/redis_password.txt",
        "secrets/postgres_password.txt",
        "tests/unit/test_deployment_files.py",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/cache.db",
        ".ruff_cache/CACHEDIR.TAG",
        ".hypothesis/examples/x",
        "tenant_worker.egg-info/PKG-INFO",
        "build/lib/tenant_worker/cli.py",
        "tenant_worker/__pycache__/cli.cpython-311.pyc",
        "dev/tenant_worker_dev/emulators/messagebird.py",
    ],
)
def test_build_context_leaves_out_secrets_and_local_state(path: str) -> None:
    assert excluded_from_build_context(path)


def test_build_context_keeps_every_file_the_dockerfile_copies() -> None:
    sources = []
    for copy in instructions("COPY"):
        words = [w for w in copy.split() if not w.startswith("--")]
        if not copy.startswith("--from="):
            sources += words[:-1]
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert not excluded_from_build_context(relative), f"{relative} is copied but .dockerignore drops it"


# --- docker-compose.yml: the app services ---------------------------------------------------------


def test_compose_file_follows_the_compose_spec_without_a_version_key() -> None:
    compose = load_compose()
    assert "version" not in compose
    assert set(APP_SERVICES) | {"postgres", "redis"} <= set(compose["services"])


def test_every_app_service_runs_the_image_built_from_this_repository() -> None:
    images = set()
    for name in APP_SERVICES:
        build = service(name)["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context / "Dockerfile").resolve() == (ROOT / "Dockerfile").resolve(), name
        images.add(service(name)["image"])
    assert len(images) == 1, f"app services should share one locally built image: {images}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_its_tenant_worker_subcommand(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    command = service(name)["command"]
    assert command[0] in subcommands()
    handler, args = dispatch(command, monkeypatch)
    assert handler == HANDLERS[name]
    if name in PROGRAMS:
        assert args.celery_args == command[1:]


def test_migrate_command_parses_as_db_upgrade() -> None:
    args = cli.build_parser().parse_args(service("migrate")["command"])
    assert (args.command, args.action) == ("db", "upgrade")


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_worker_and_beat_pass_only_options_celery_accepts(name: str) -> None:
    options = service(name)["command"][1:]
    if PROGRAMS[name] == "worker":
        _, options = cli.worker_selection(options)  # --shards/--queues/--tenant are tenant-worker's own
    context = celery_context(PROGRAMS[name], options)
    assert context.args == [], f"celery {name} would ignore {context.args}"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_worker_and_beat_are_restarted_after_a_crash(name: str) -> None:
    restart = service(name).get("restart", "no")
    assert restart in ("always", "unless-stopped") or str(restart).startswith("on-failure"), restart


def test_migrate_runs_once_and_is_never_restarted() -> None:
    # A bare YAML `no` would load as False, which compose rejects; it has to be the string "no".
    assert service("migrate")["restart"] == "no"


def test_beat_runs_as_exactly_one_replica() -> None:
    beat = service("beat")
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1


@pytest.mark.parametrize("name", WORKER_POOLS)
def test_worker_can_be_scaled_without_name_or_port_clashes(name: str) -> None:
    worker = service(name)
    assert "container_name" not in worker
    assert not worker.get("ports")


@pytest.mark.parametrize("name", WORKER_POOLS)
def test_worker_starts_only_after_migrations_succeed_and_redis_is_healthy(name: str) -> None:
    depends = service(name)["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_migrate_waits_for_a_healthy_postgres() -> None:
    assert service("migrate")["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in service("postgres")["healthcheck"]["test"]


@pytest.mark.parametrize("name", WORKER_POOLS)
def test_worker_stop_grace_period_lets_warm_shutdown_finish_the_longest_task(name: str) -> None:
    from tenant_worker.celery_app import create_app

    limit = create_app(Settings(redis_url="redis://localhost:6379/0")).conf.task_time_limit
    assert duration_seconds(service(name)["stop_grace_period"]) > limit


@pytest.mark.parametrize("name", [*WORKER_POOLS, "beat"])
def test_worker_and_beat_health_is_their_own_heartbeat_probe_not_a_broadcast_ping(name: str) -> None:
    from tenant_worker import cli

    test = service(name)["healthcheck"]["test"]
    assert test[:2] == ["CMD", "tenant-worker"] and "inspect" not in test
    args = cli.build_parser().parse_args(test[2:])
    assert (args.command, args.kind, args.ready) == ("probe", service(name)["command"][0], True)


# --- docker-compose.yml: credentials ---------------------------------------------------------------


def test_redis_requires_the_password_read_from_the_secret() -> None:
    redis = service("redis")
    command = " ".join(redis["command"])
    assert re.search(r'--requirepass "\$\$\(cat /run/secrets/redis_password\)"', command), command
    assert "redis_password" in redis["secrets"]
    assert "/run/secrets/redis_password" in " ".join(redis["healthcheck"]["test"])


def test_redis_password_never_appears_as_a_literal_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    values = re.findall(r'--requirepass\s+("[^"]*"|\S+)', text)
    assert values and all(v == '"$$(cat /run/secrets/redis_password)"' for v in values), values
    assert not re.search(r"-a\s", " ".join(service("redis")["healthcheck"]["test"])), "password on redis-cli argv"
    assert load_compose()["secrets"]["redis_password"].keys() == {"file"}
    for name, definition in load_compose()["services"].items():
        env = definition.get("environment", {})
        assert not {"REDIS_PASSWORD", "REDIS_URL"} & set(env), f"{name} gets the Redis password as plain env"


@pytest.mark.parametrize("secret", ["redis_password", "postgres_password", "admin_api_keys"])
def test_secret_files_stay_out_of_the_build_context(secret: str) -> None:
    secret_file = Path(load_compose()["secrets"][secret]["file"])
    assert excluded_from_build_context(secret_file.as_posix().removeprefix("./"))


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_service_reads_the_redis_password_from_the_secret(name: str) -> None:
    definition = service(name)
    assert "redis_password" in definition["secrets"]
    assert definition["environment"]["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"


def test_postgres_initialises_its_password_from_the_secret() -> None:
    postgres = service("postgres")
    path = postgres["environment"]["POSTGRES_PASSWORD_FILE"]
    assert secret_mounts("postgres").get(path) == "postgres_password", (path, secret_mounts("postgres"))
    assert "POSTGRES_PASSWORD" not in postgres["environment"], "the image refuses both, and env shows in inspect"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_service_reads_the_database_password_from_the_secret_postgres_uses(name: str) -> None:
    env = service(name)["environment"]
    assert secret_mounts(name).get(env["DATABASE_PASSWORD_FILE"]) == "postgres_password"
    postgres = service("postgres")["environment"]
    assert env["DATABASE_PASSWORD_FILE"] == postgres["POSTGRES_PASSWORD_FILE"]
    url = urlsplit(env["DATABASE_URL"])
    assert url.password is None and "password" not in url.query, "the password comes from the secret only"
    assert (url.username, url.path) == (postgres["POSTGRES_USER"], "/" + postgres["POSTGRES_DB"])


def test_database_password_never_appears_in_the_compose_file_or_a_container_environment() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD" not in text and "$POSTGRES_PASSWORD" not in text
    assert not re.search(r"postgres(?:ql)?(?:\+\w+)?://[^/\s@]*:[^@\s]*@", text), "a database URL with a password"
    assert load_compose()["secrets"]["postgres_password"].keys() == {"file"}
    for name, definition in load_compose()["services"].items():
        env = definition.get("environment", {})
        leaked = {"POSTGRES_PASSWORD", "DATABASE_PASSWORD", "PGPASSWORD"} & set(env)
        assert not leaked, f"{name} gets the database password as plain env: {leaked}"


def test_compose_environment_yields_settings_for_the_compose_services(tmp_path: Path) -> None:
    redis_secret, postgres_secret = tmp_path / "redis_password", tmp_path / "postgres_password"
    redis_secret.write_text("p@ss#word\n", encoding="utf-8")
    postgres_secret.write_text("pg/pass+word= @:%#?\n", encoding="utf-8")
    env = container_environment("worker-shards-a", {})
    assert env["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"
    assert env["DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    settings = load_settings(
        {**env, "REDIS_PASSWORD_FILE": str(redis_secret), "DATABASE_PASSWORD_FILE": str(postgres_secret)}
    )
    postgres = service("postgres")["environment"]
    user, database = postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]
    assert settings.redis_url == "redis://:p%40ss%23word@redis:6379/0"
    url = make_url(normalize_database_url(settings.database_url))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        user,
        "pg/pass+word= @:%#?",
        "postgres",
        5432,
        database,
    )
    assert (settings.sms_backend, settings.messagebird_access_key, settings.sentry_dsn) == ("console", "", "")
    assert settings.sentry_environment == "production"


@pytest.mark.parametrize("name", [*APP_SERVICES, "postgres", "redis"])
def test_compose_needs_no_password_in_the_host_environment(name: str) -> None:
    env = container_environment(name, {}) if "environment" in service(name) else {}
    assert not {k for k, v in env.items() if "PASSWORD" in k and not k.endswith("_FILE") and v}


# --- docker-compose.yml: the HTTP API ------------------------------------------------------------------


def test_api_listens_on_every_interface_in_its_container_but_is_published_on_loopback_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, args = dispatch(service("api")["command"], monkeypatch)
    assert handler == "cmd_api" and args.host == "0.0.0.0"
    published = [str(p) for p in service("api")["ports"]]
    assert published == [f"127.0.0.1:{args.port}:{args.port}"], published


def test_api_healthcheck_asks_readyz_on_the_port_it_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    _, args = dispatch(service("api")["command"], monkeypatch)
    probe = " ".join(service("api")["healthcheck"]["test"])
    assert f"http://127.0.0.1:{args.port}/readyz" in probe


def test_api_starts_after_migrations_and_is_restarted() -> None:
    api = service("api")
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["restart"] == "unless-stopped"


def test_api_reads_admin_keys_from_a_secret_never_from_plain_environment(tmp_path: Path) -> None:
    env = container_environment("api", {})
    assert secret_mounts("api").get(env["ADMIN_API_KEYS_FILE"]) == "admin_api_keys"
    assert load_compose()["secrets"]["admin_api_keys"].keys() == {"file"}
    for name, definition in load_compose()["services"].items():
        assert "ADMIN_API_KEYS" not in definition.get("environment", {}), f"{name} gets admin keys as plain env"
    keys = tmp_path / "admin_api_keys"
    keys.write_text("k" * 64 + "\n", encoding="utf-8")
    secrets = tmp_path / "redis_password"
    secrets.write_text("p\n", encoding="utf-8")
    database = tmp_path / "postgres_password"
    database.write_text("d\n", encoding="utf-8")
    files = {
        "ADMIN_API_KEYS_FILE": str(keys),
        "REDIS_PASSWORD_FILE": str(secrets),
        "DATABASE_PASSWORD_FILE": str(database),
    }
    assert load_settings({**env, **files}).admin_api_keys == ("k" * 64,)
