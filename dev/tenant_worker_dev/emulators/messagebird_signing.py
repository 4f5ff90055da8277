"""Signing webhook requests the way MessageBird does, for the emulator, the tests and the benchmark.

MessageBird puts a JWT in ``MessageBird-Signature-JWT``, HS256 with the account's signing key, with
the claims its SDK's ``RequestValidator`` checks: ``iss`` "MessageBird", ``nbf`` and ``exp`` (a short
validity), ``jti`` (unique per request), ``url_hash`` (SHA-256 hex of the full URL it calls, query
string included) and, when there is a body, ``payload_hash`` (SHA-256 hex of the body).
"""

from __future__ import annotations

import hashlib
import time
import uuid

import jwt

SIGNATURE_HEADER = "MessageBird-Signature-JWT"
DEFAULT_VALIDITY = 60


def sign_request(
    signing_key: str,
    url: str,
    body: bytes = b"",
    *,
    issued_at: float | None = None,
    validity: float = DEFAULT_VALIDITY,
    token_id: str | None = None,
    issuer: str = "MessageBird",
) -> str:
    """The ``MessageBird-Signature-JWT`` value for a request to ``url`` with ``body``."""
    now = time.time() if issued_at is None else issued_at
    claims: dict[str, object] = {
        "iss": issuer,
        "nbf": int(now),
        "exp": int(now + validity),
        "jti": token_id or uuid.uuid4().hex,
        "url_hash": hashlib.sha256(url.encode()).hexdigest(),
    }
    if body:
        claims["payload_hash"] = hashlib.sha256(body).hexdigest()
    return jwt.encode(claims, signing_key, algorithm="HS256")
