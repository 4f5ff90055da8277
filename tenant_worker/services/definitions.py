"""Tenant definition files (TOML or YAML) for onboarding, validated completely before anything is written.

    slug = "acme"
    name = "Acme Fiber"
    timezone = "Europe/Amsterdam"
    locale = "nl"
    originator = "AcmeFiber"
    send_time = "10:00"              # local; default 10:00
    sending_window = "08:00-21:00"   # local; default 08:00-21:00; "00:00-00:00" = no quiet hours
    windows = [5, 3, 1]              # days before expiry; default 5,3,1
    queue = "shard"                  # or "dedicated"
    max_segments = 3                 # SMS segments per reminder; default 3, 1 to 10
    date_style = "long"              # {expires_on}: short, medium or long (CLDR); default long
    normalize_text = false           # also normalise the tenant's own text to GSM-7; default false

    [[templates]]                    # optional window and/or locale; the most specific one wins
    body = "Hi {customer_name}, ..."

Every problem in the file is reported at once, as a :class:`ValidationError`.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenant_worker.adapters import cldr
from tenant_worker.domain.localtime import SendingWindow, parse_hhmm, parse_window
from tenant_worker.domain.model import DATE_STYLES, DEFAULT_DATE_STYLE, DEFAULT_SEND_TIME, TenantSpec, ValidationError
from tenant_worker.domain.sms_limits import DEFAULT_MAX_SEGMENTS, MAX_SEGMENTS_LIMIT
from tenant_worker.domain.templates import TemplateError, upgrade_amount_placeholders, validate_template
from tenant_worker.domain.windows import DEFAULT_WINDOWS
from tenant_worker.services.rendering import check_template
from tenant_worker.services.tenants import DEFAULT_TEMPLATE

REQUIRED = ("slug", "name", "timezone", "originator")
OPTIONAL = (
    "locale", "send_time", "sending_window", "windows", "queue", "templates", "max_segments", "date_style",
    "normalize_text",
)  # fmt: skip


@dataclass(frozen=True)
class TemplateDefinition:
    """One SMS template of a definition; ``None`` window/locale means "any"."""

    body: str
    window: int | None = None
    locale: str | None = None


@dataclass(frozen=True)
class TenantDefinition:
    """A validated tenant definition."""

    spec: TenantSpec
    templates: tuple[TemplateDefinition, ...]


def read_definition_file(path: Path) -> dict[str, Any]:
    """Load a ``.toml``, ``.yaml`` or ``.yml`` file into a dict; syntax errors become ValidationError."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise ValidationError([f"{path.name}: expected a mapping of settings at the top level"])
            return data
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError([f"{path.name}: {exc}"]) from None
    except Exception as exc:  # yaml.YAMLError, without importing yaml for TOML users
        raise ValidationError([f"{path.name}: {type(exc).__name__}: {exc}"]) from None
    raise ValidationError([f"{path.name}: use a .toml, .yaml or .yml file"])


def _field(data: dict[str, Any], name: str, parse: Any, default: Any, problems: list[str]) -> Any:
    if name not in data:
        return default
    try:
        return parse(data[name])
    except (TypeError, ValueError) as exc:
        problems.append(f"{name}: {exc}")
        return default


def _windows(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{value!r} must be a list of whole days, like [5, 3, 1]")
    return tuple(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} must be text")
    return value


def _whole_number(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} must be a whole number")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} must be true or false")
    return value


def _templates(value: Any, spec: TenantSpec, problems: list[str]) -> tuple[TemplateDefinition, ...]:
    if not isinstance(value, list):
        problems.append("templates: must be a list of tables with body (and optionally window, locale)")
        return ()
    found: list[TemplateDefinition] = []
    for number, item in enumerate(value, start=1):
        where = f"templates[{number}]"
        if not isinstance(item, dict) or not isinstance(item.get("body"), str):
            problems.append(f"{where}: needs a body text")
            continue
        unknown = sorted(set(item) - {"body", "window", "locale"})
        problems.extend(f"{where}: unknown setting {key!r}" for key in unknown)
        window, locale = item.get("window"), item.get("locale")
        if window is not None and window not in spec.windows:
            problems.append(f"{where}: window {window!r} is not one of the tenant's windows {list(spec.windows)}")
        if locale is not None and not isinstance(locale, str):
            problems.append(f"{where}: locale must be text")
            locale = None
        elif locale is not None and not cldr.is_known_locale(locale):
            problems.append(f"{where}: locale {locale!r} is not a CLDR locale (e.g. nl_NL, fr_BE, en)")
            locale = None
        elif locale is not None:
            locale = cldr.canonical_locale(locale)
        body = upgrade_amount_placeholders(item["body"])
        problems.extend(_template_problems(body, spec, where, locale))
        found.append(TemplateDefinition(body, window, locale))
    scopes = [(t.window, t.locale) for t in found]
    problems.extend(
        f"templates: two templates for window {w} / locale {loc}"
        for w, loc in set(scopes)
        if scopes.count((w, loc)) > 1
    )
    if (None, None) not in scopes:
        # Used for the reminders no other template covers, so it must fit the tenant's cap too.
        where = "the default template (added as no template covers every window and locale)"
        problems.extend(_template_problems(DEFAULT_TEMPLATE, spec, where))
        found.append(TemplateDefinition(DEFAULT_TEMPLATE))
    return tuple(found)


def _template_problems(body: str, spec: TenantSpec, where: str, locale: str | None = None) -> list[str]:
    """Syntax first; the worst-case length (in the template's locale) only of a template that parses."""
    try:
        validate_template(body, cldr.plural_rule(cldr.usable_locale(locale or spec.locale)))
        if 1 <= spec.max_segments <= MAX_SEGMENTS_LIMIT:  # else the spec's own problem says it
            check_template(
                body, spec.name, spec.max_segments, locale=locale or spec.locale,
                date_style=spec.date_style if spec.date_style in DATE_STYLES else DEFAULT_DATE_STYLE,
                normalize_text=spec.normalize_text, what=where,
            )  # fmt: skip
    except TemplateError as exc:
        return [problem if problem.startswith(where) else f"{where}: {problem}" for problem in exc.problems]
    return []


def parse_definition(data: dict[str, Any]) -> TenantDefinition:
    """Validate a loaded definition, listing every problem (unknown keys, zone, originator, templates...)."""
    problems = [f"missing setting {key!r}" for key in REQUIRED if key not in data]
    problems += [f"unknown setting {key!r}" for key in sorted(set(data) - set(REQUIRED) - set(OPTIONAL))]
    text = {key: _field(data, key, _text, "", problems) for key in REQUIRED}
    locale = _field(data, "locale", _text, "en", problems)
    send_time: dt.time = _field(data, "send_time", lambda v: parse_hhmm(_text(v)), DEFAULT_SEND_TIME, problems)
    window: SendingWindow = _field(data, "sending_window", lambda v: parse_window(_text(v)), SendingWindow(), problems)
    windows = _field(data, "windows", _windows, DEFAULT_WINDOWS, problems)
    queue = _field(data, "queue", _text, "shard", problems)
    max_segments = _field(data, "max_segments", _whole_number, DEFAULT_MAX_SEGMENTS, problems)
    date_style = _field(data, "date_style", _text, DEFAULT_DATE_STYLE, problems)
    normalize_text = _field(data, "normalize_text", _boolean, False, problems)
    if not cldr.is_known_locale(locale):
        problems.append(f"locale {locale!r} is not a CLDR locale (e.g. nl_NL, fr_BE, en)")
    if queue not in ("shard", "dedicated"):
        problems.append(f"queue {queue!r} must be 'shard' or 'dedicated'")
    spec = TenantSpec(
        text["slug"], text["name"], text["timezone"], text["originator"], locale, windows,
        send_time=send_time, sending_window=window, dedicated=queue == "dedicated", max_segments=max_segments,
        date_style=date_style, normalize_text=normalize_text,
    )  # fmt: skip
    try:
        spec = spec.validated()
    except ValidationError as exc:
        problems.extend(exc.problems)
    templates = _templates(data.get("templates", []), spec, problems)
    if problems:
        raise ValidationError(problems)
    return TenantDefinition(spec, templates)
