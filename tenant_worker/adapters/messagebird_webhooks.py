"""MessageBird's signed webhooks: the SDK's ``RequestValidator`` on the public URL, and the replay store.

MessageBird signs each request it makes with a JWT (``MessageBird-Signature-JWT``, HS256/384/512 with
the account's signing key) whose claims bind it to the URL it called (``url_hash``, SHA-256 of the
whole URL with its query string), the body (``payload_hash``), a validity (``nbf``/``exp``, checked
with one second of leeway) and an id (``jti``). :class:`MessageBirdSignatures` lets the official
validator check all but the id, on ``PUBLIC_BASE_URL`` + path + raw query: the address MessageBird
called, not the one a proxy forwarded to us. :class:`RedisReplayGuard` refuses an id seen before, for
as long as the token would be valid, so a captured request cannot be played again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

import redis
from messagebird.error import ValidationError as SignatureError
from messagebird.request_validator import RequestValidator
from redis.exceptions import RedisError

from tenant_worker.constants import WEBHOOK_SEEN_PREFIX
from tenant_worker.domain.ports import SignedToken, WebhookRejected, WebhookUnavailable, replay_ttl

MAX_TOKEN_ID = 128


class MessageBirdSignatures:
    """``domain.ports.WebhookVerifier`` with the SDK's validator and the configured signing key."""

    def __init__(self, signing_key: str, public_base_url: str) -> None:
        self._validator = RequestValidator(signing_key) if signing_key else None
        self._base = public_base_url.rstrip("/")

    def verify(self, signature: str | None, path: str, raw_query: str, body: bytes) -> SignedToken:
        """Check the token on the public URL and ``body``; it must carry an id (``jti``) and an expiry."""
        if self._validator is None or not self._base:
            raise WebhookUnavailable("webhooks need MESSAGEBIRD_SIGNING_KEY and PUBLIC_BASE_URL")
        if not signature:
            raise WebhookRejected("missing MessageBird-Signature-JWT header")
        url = self._base + path + (f"?{raw_query}" if raw_query else "")
        try:
            claims = self._validator.validate_signature(signature, url, body)
        except SignatureError as exc:
            raise WebhookRejected(f"invalid signature: {exc}") from None
        token_id, expires = claims.get("jti"), claims.get("exp")
        if not isinstance(token_id, str) or not 0 < len(token_id) <= MAX_TOKEN_ID:
            raise WebhookRejected("invalid signature: the token has no usable jti, so a replay could not be told")
        if not isinstance(expires, int | float):
            raise WebhookRejected("invalid signature: exp is not a number")
        return SignedToken(token_id, dt.datetime.fromtimestamp(expires, dt.UTC))


class RedisReplayGuard:
    """``domain.ports.ReplayGuard`` as ``SET NX EX`` keys: one round trip, atomic across processes."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def first_use(self, tokens: Sequence[SignedToken], now: dt.datetime) -> list[bool]:
        """Remember the ids (one pipelined round trip); False for those already remembered."""
        if not tokens:
            return []
        pipe = self.client.pipeline(transaction=False)
        for token in tokens:
            pipe.set(WEBHOOK_SEEN_PREFIX + token.token_id, 1, nx=True, ex=replay_ttl(token, now))
        try:
            return [bool(answer) for answer in pipe.execute()]
        except RedisError as exc:
            raise WebhookUnavailable(f"cannot check for replays: Redis unavailable ({type(exc).__name__})") from None

    def forget(self, tokens: Sequence[SignedToken]) -> None:
        """Forget the ids (best effort: if Redis is down, the keys expire by themselves)."""
        if tokens:
            with contextlib.suppress(RedisError):
                self.client.delete(*(WEBHOOK_SEEN_PREFIX + token.token_id for token in tokens))
