"""MessageBird SMS gateway: the official SDK over our own HTTP client.

The SDK's bundled ``HttpClient`` calls ``requests.post`` with no timeout and a new connection per
message, and turns 429/5xx into bare ``HTTPError``. :class:`PooledHttpClient` implements the same
``request`` interface on a pool of keep-alive connections (:mod:`tenant_worker.adapters.http_pool`:
as many as the requests kept in flight, connect and read timeouts, a configurable endpoint) and
raises exceptions that say whether the request could have reached MessageBird.
:class:`MessageBirdGateway` turns those into the ledger's outcomes:

* 422 (the SDK's ``ErrorException``) -> ``failed``: MessageBird refused this message; retrying cannot help;
* 401/403 -> ``rejected_key``: MessageBird refused our access key, whatever the message; nothing was
  sent, and the caller pauses sending (the circuit breaker) instead of failing every reminder;
* 429, 5xx, and connection errors before the request was sent -> ``retry`` with backoff;
* a read timeout or a connection lost after the request went out -> ``unknown``: it may have been
  sent, so it is never resent automatically.
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import messagebird
from messagebird.client import ErrorException
from messagebird.http_client import ResponseFormat
from messagebird.serde import json_serialize

from tenant_worker.adapters.http_pool import ConnectionPool, NoAnswerError, NotSentError
from tenant_worker.domain.model import AccessCheck, OutboundSms, OutcomeKind, SendOutcome

USER_AGENT = "tenant-worker MessageBird/ApiClient"
# Statuses the SDK parses itself (its ``errors`` body becomes ErrorException).
_SDK_STATUSES = frozenset({200, 201, 204, 401, 404, 405, 422})


class GatewayNotSentError(Exception):
    """The request certainly did not reach MessageBird (or was rejected as 429/5xx): safe to retry."""


class GatewayNoAnswerError(Exception):
    """The request went out but no answer came back: the SMS may or may not have been sent."""


class GatewayKeyRejectedError(Exception):
    """401/403: the access key is wrong or revoked; no request with it will succeed."""


class GatewayRejectedError(Exception):
    """An HTTP status the SDK does not understand and that is not worth retrying (e.g. 400, 403)."""


class PooledHttpClient:
    """Drop-in for ``messagebird.http_client.HttpClient`` with pooling, timeouts and clear errors."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int,
    ) -> None:
        parts = urlsplit(endpoint)
        self.base_path = parts.path.rstrip("/") + "/"
        # Proxy and CA bundle come from the environment once, here, as requests would read them.
        proxy = None if urllib.request.proxy_bypass(parts.hostname or "") else urllib.request.getproxies().get("https")
        self.pool = ConnectionPool(
            f"{parts.scheme}://{parts.netloc}",
            size=pool_size,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None,
            proxy=proxy,
        )
        self.headers = {
            "Host": parts.netloc,
            "Accept": "application/json",
            "Authorization": f"AccessKey {access_key}",
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json; charset=UTF-8",
            "Connection": "keep-alive",
        }

    def request(
        self,
        path: str,
        method: str = "GET",
        params: dict[str, Any] | None = None,
        format: ResponseFormat = ResponseFormat.text,
    ) -> str | bytes:
        """Perform one API call the way the SDK expects, classifying transport failures."""
        params = params or {}
        target = self.base_path + path.lstrip("/")
        body = None
        if method == "GET":
            target += f"?{urlencode(params)}" if params else ""
        else:
            body = json_serialize(params)
        try:
            answer = self.pool.request(method, target, body, self.headers)
        except NotSentError as exc:
            raise GatewayNotSentError(f"cannot connect to MessageBird: {exc}") from None
        except NoAnswerError as exc:
            raise GatewayNoAnswerError(str(exc)) from None
        if answer.status in (401, 403):
            raise GatewayKeyRejectedError(
                f"MessageBird answered HTTP {answer.status}: the access key is wrong or revoked"
            )
        if answer.status == 429 or answer.status >= 500:
            raise GatewayNotSentError(f"MessageBird answered HTTP {answer.status}")
        if answer.status not in _SDK_STATUSES:
            raise GatewayRejectedError(f"MessageBird answered HTTP {answer.status}")
        return answer.body if format == ResponseFormat.binary else answer.body.decode("utf-8", "replace")

    def close(self) -> None:
        """Close pooled connections."""
        self.pool.close()


class MessageBirdGateway:
    """Sends SMS through MessageBird; thread-safe, one instance (and connection pool) per process."""

    def __init__(
        self,
        access_key: str,
        endpoint: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        pool_size: int = 32,
        report_url: str | None = None,
    ) -> None:
        self.report_url = report_url
        self.http = PooledHttpClient(
            endpoint,
            access_key,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            pool_size=pool_size,
        )
        self.client = messagebird.Client(access_key, http_client=self.http)

    def send(self, sms: OutboundSms) -> SendOutcome:
        """Send one SMS with ``reference`` = reminder id (and ``reportUrl``, where MessageBird sends its
        status reports, when configured) and classify the result (see module docs)."""
        params = {"reference": sms.reference, "datacoding": "unicode" if sms.encoding == "UCS-2" else "plain"}
        params.update({"originator": sms.originator, "body": sms.body, "recipients": sms.recipient})
        if self.report_url:
            params["reportUrl"] = self.report_url
        try:
            # What the SDK's message_create sends, through its request() (JSON decoding, errors as
            # ErrorException), without loading the answer into a Message: that parses every date
            # with dateutil, a tenth of a send's CPU, for the one field we keep, the id.
            message = self.client.request("messages", "POST", params)
        except ErrorException as exc:
            return SendOutcome(OutcomeKind.FAILED, error=_describe_errors(exc))
        except GatewayKeyRejectedError as exc:
            return SendOutcome(OutcomeKind.REJECTED_KEY, error=str(exc))
        except GatewayRejectedError as exc:
            return SendOutcome(OutcomeKind.FAILED, error=str(exc))
        except GatewayNotSentError as exc:
            return SendOutcome(OutcomeKind.RETRY, error=str(exc))
        except GatewayNoAnswerError as exc:
            return SendOutcome(OutcomeKind.UNKNOWN, error=str(exc))
        except ValueError:
            # The SDK raises ValueError on a body that is not JSON; we cannot know if it was sent.
            return SendOutcome(OutcomeKind.UNKNOWN, error="unreadable answer from MessageBird")
        if not isinstance(message, dict) or not message.get("id"):
            return SendOutcome(OutcomeKind.UNKNOWN, error="unreadable answer from MessageBird")
        return SendOutcome(OutcomeKind.SENT, provider_id=str(message["id"]))

    def check_access(self) -> AccessCheck:
        """``GET /balance``: the cheapest authenticated call, sending nothing."""
        try:
            self.client.request("balance")
        except GatewayKeyRejectedError:
            return AccessCheck.REJECTED
        except (ErrorException, GatewayRejectedError, GatewayNotSentError, GatewayNoAnswerError, ValueError):
            return AccessCheck.UNREACHABLE
        return AccessCheck.OK

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()


def _describe_errors(exc: ErrorException) -> str:
    """MessageBird's error codes and descriptions (they name parameters, never values)."""
    parts = [f"code {e.code} {e.parameter or ''}: {e.description}".replace(" :", ":") for e in exc.errors]
    return "MessageBird refused the message: " + "; ".join(parts)
