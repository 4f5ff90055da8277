"""Secrets out of text: passwords masked in URLs and removed from free text (exception messages, logs).

Kept apart from ``config`` (which re-exports these names), because every layer that prints or logs needs
them and none of them needs the settings.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """Replace the password in a URL with ``**`` (Celery's own convention), leaving the rest readable.

    libpq also takes the password as a ``password=`` query parameter, so that is masked too.
    """
    base, question_mark, query = url.partition("?")
    url = base + question_mark + re.sub(r"(^|&)password=[^&#]*", r"\1password=**", query)
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    if ":" not in userinfo:
        return url  # a user name without a password: nothing to hide, and worth seeing in an error
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:**@{hostinfo}"))


def redact_text(text: str, secrets: list[str]) -> str:
    """Remove every known secret (and any URL password) from free text such as an exception message."""
    for secret in secrets:
        if secret:
            # Raw, fully percent-encoded (our URLs), and as SQLAlchemy's URL.render_as_string writes it
            # (spaces and "+" left as they are in the user info, form-encoded in the query string).
            # Longest first: "100%25" is inside its own encoding "100%2525" and would leave "25" behind.
            forms = {secret, quote(secret, safe=""), quote(secret, safe=" +"), quote_plus(secret)}
            for form in sorted(forms, key=len, reverse=True):
                text = text.replace(form, "**")
    return re.sub(r"(rediss?|postgres(?:ql)?(?:\+\w+)?)://([^:/@\s]*):[^@\s]*@", r"\1://\2:**@", text)


def url_password(url: str) -> str:
    """The decoded password of a URL (or of its libpq-style ``password=`` parameter), or ``""``: what a
    logging filter has to look for."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    return parse_qs(parts.query).get("password", [""])[0]


def without_password(url: str) -> str:
    """``url`` with its password removed (from the user info and any ``password=`` parameter), the user
    name kept: for settings that are displayed, with the password passed separately (see celery_app)."""
    base, question_mark, query = url.partition("?")
    query = "&".join(part for part in query.split("&") if part and not part.startswith("password="))
    parts = urlsplit(base + (question_mark if query else "") + query)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at:
        return urlunsplit(parts)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{hostinfo}" if user else hostinfo))
