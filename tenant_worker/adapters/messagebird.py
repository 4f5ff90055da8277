"""MessageBird SMS gateway: the official SDK over our own HTTP client.

The SDK's bundled ``HttpClient`` calls ``requests.post`` with no timeout and a new connection per
message, and turns 429/5xx into bare ``HTTPError``. :class:`SessionHttpClient` implements the same
``request`` interface on a shared ``requests.Session`` (keep-alive, a connection pool as large as
the number of requests kept in flight, connect and read timeouts, a configurable endpoint) and raises
exceptions that say whether the request could have reached MessageBird. :class:`MessageBirdGateway`
turns those into the ledger's outcomes:

* 401/422 (the SDK's ``ErrorException``) -> ``failed``: MessageBird refused it; retrying cannot help;
* 429, 5xx, and connection errors before the request was sent -> ``retry`` with backoff;
* a read timeout or a connection lost after the request went out -> ``unknown``: it may have been
  sent, so it is never resent automatically.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urljoin

import messagebird
import requests
from messagebird.client import ErrorException
from messagebird.http_client import ResponseFormat
from messagebird.serde import json_serialize
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from tenant_worker.domain.model import OutboundSms, OutcomeKind, SendOutcome

USER_AGENT = "tenant-worker MessageBird/ApiClient"
# Statuses the SDK parses itself (its ``errors`` body becomes ErrorException).
_SDK_STATUSES = frozenset({200, 201, 204, 401, 404, 405, 422})


class GatewayNotSentError(Exception):
    """The request certainly did not reach MessageBird (or was rejected as 429/5xx): safe to retry."""


class GatewayNoAnswerError(Exception):
    """The request went out but no answer came back: the SMS may or may not have been sent."""


class GatewayRejectedError(Exception):
    """An HTTP status the SDK does not understand and that is not worth retrying (e.g. 400, 403)."""


class SessionHttpClient:
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
        self.endpoint = endpoint.rstrip("/") + "/"
        self.access_key = access_key
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, pool_block=True, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # Proxies and a CA bundle from the environment are read once, here: with trust_env requests
        # re-reads the environment (and looks for ~/.netrc) on every call, a measurable share of the
        # CPU of a send at hundreds of SMS a second, and a netrc entry could replace our AccessKey.
        self.session.proxies.update(requests.utils.get_environ_proxies(self.endpoint))
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False
        self.session.headers.update(
            {
                "Accept": "application/json",
                "Authorization": f"AccessKey {access_key}",
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json; charset=UTF-8",
            }
        )

    def request(
        self,
        path: str,
        method: str = "GET",
        params: dict[str, Any] | None = None,
        format: ResponseFormat = ResponseFormat.text,
    ) -> str | bytes:
        """Perform one API call the way the SDK expects, classifying transport failures."""
        url = urljoin(self.endpoint, path)
        params = params or {}
        body = None if method == "GET" else json_serialize(params)
        try:
            response = self.session.request(
                method, url, params=params if method == "GET" else None, data=body, timeout=self.timeout
            )
        except requests.ConnectionError as exc:
            if _never_reached_server(exc):
                raise GatewayNotSentError(f"cannot connect to MessageBird: {type(exc).__name__}") from None
            raise GatewayNoAnswerError(f"connection lost after sending: {type(exc).__name__}") from None
        except requests.Timeout:
            raise GatewayNoAnswerError(f"no answer within {self.timeout[1]:g}s (read timeout)") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise GatewayNotSentError(f"MessageBird answered HTTP {response.status_code}")
        if response.status_code not in _SDK_STATUSES:
            raise GatewayRejectedError(f"MessageBird answered HTTP {response.status_code}")
        return response.content if format == ResponseFormat.binary else response.text

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()


def _never_reached_server(exc: BaseException) -> bool:
    """True when urllib3 failed while opening the connection, i.e. before any byte was sent."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError | requests.ConnectTimeout):
            return True
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return False


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
    ) -> None:
        self.http = SessionHttpClient(
            endpoint,
            access_key,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            pool_size=pool_size,
        )
        self.client = messagebird.Client(access_key, http_client=self.http)

    def send(self, sms: OutboundSms) -> SendOutcome:
        """Send one SMS with ``reference`` = reminder id and classify the result (see module docs)."""
        params = {"reference": sms.reference, "datacoding": "unicode" if sms.encoding == "UCS-2" else "plain"}
        params.update({"originator": sms.originator, "body": sms.body, "recipients": sms.recipient})
        try:
            # What the SDK's message_create sends, through its request() (JSON decoding, errors as
            # ErrorException), without loading the answer into a Message: that parses every date
            # with dateutil, a tenth of a send's CPU, for the one field we keep, the id.
            message = self.client.request("messages", "POST", params)
        except ErrorException as exc:
            return SendOutcome(OutcomeKind.FAILED, error=_describe_errors(exc))
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

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()


def _describe_errors(exc: ErrorException) -> str:
    """MessageBird's error codes and descriptions (they name parameters, never values)."""
    parts = [f"code {e.code} {e.parameter or ''}: {e.description}".replace(" :", ":") for e in exc.errors]
    return "MessageBird refused the message: " + "; ".join(parts)
