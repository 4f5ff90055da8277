"""The HTTP API's settings: host and port, admin keys from the environment or a secret file (never
shown), and the per-key rate limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenant_worker.config import ConfigurationError, load_settings, redact_text, secrets_of

KEY_A, KEY_B = "a" * 40, "b-" + "x" * 30


def test_defaults_listen_on_loopback_with_no_admin_key() -> None:
    settings = load_settings({})
    assert (settings.api_host, settings.api_port, settings.admin_api_keys) == ("127.0.0.1", 8080, ())
    assert (settings.api_rate_per_second, settings.api_rate_burst) == (50.0, 100)


def test_host_port_and_rate_come_from_the_environment() -> None:
    env = {"API_HOST": "0.0.0.0", "API_PORT": "9000", "API_RATE_PER_SECOND": "2.5", "API_RATE_BURST": "7"}
    settings = load_settings(env)
    assert (settings.api_host, settings.api_port, settings.api_rate_per_second, settings.api_rate_burst) == (
        "0.0.0.0", 9000, 2.5, 7,
    )  # fmt: skip


def test_admin_keys_are_comma_separated_and_blanks_ignored() -> None:
    assert load_settings({"ADMIN_API_KEYS": f" {KEY_A} ,, {KEY_B},"}).admin_api_keys == (KEY_A, KEY_B)


def test_admin_keys_file_wins_and_takes_one_key_a_line(tmp_path: Path) -> None:
    secret = tmp_path / "admin_keys"
    secret.write_text(f"{KEY_A}\n{KEY_B}\n")
    settings = load_settings({"ADMIN_API_KEYS_FILE": str(secret), "ADMIN_API_KEYS": "c" * 40})
    assert settings.admin_api_keys == (KEY_A, KEY_B)


def test_an_unreadable_admin_keys_file_names_the_path_not_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ADMIN_API_KEYS_FILE"):
        load_settings({"ADMIN_API_KEYS_FILE": str(tmp_path / "missing")})


def test_a_short_admin_key_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"ADMIN_API_KEYS": "hunter2"})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "env", [{"API_PORT": "0"}, {"API_PORT": "70000"}, {"API_RATE_PER_SECOND": "-1"}, {"API_RATE_BURST": "0"}]
)
def test_out_of_range_api_numbers_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        load_settings(env)


def test_admin_keys_are_never_in_the_repr_and_are_redacted_like_passwords() -> None:
    settings = load_settings({"ADMIN_API_KEYS": f"{KEY_A},{KEY_B}"})
    assert KEY_A not in repr(settings) and KEY_B not in repr(settings)
    assert redact_text(f"got {KEY_A} and {KEY_B}", secrets_of(settings)) == "got ** and **"
