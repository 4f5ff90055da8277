"""Celery's worker consumer, made to set malformed messages aside instead of stopping on them.

A message on a queue that cannot become a task (bytes that are not JSON, JSON that is not a kombu
envelope, headers that are not a mapping, a body that does not decode, a task this worker does not
have) is logged without its body (it may hold phone numbers), removed from the queue, counted in
Redis (``tenant-worker queues`` shows the counts), and the worker goes on consuming.

The failures happen at two depths, so the checks sit at two depths:

* kombu's Redis transport pops a message with BRPOP and parses it (``json.loads``, then its virtual
  ``Message``: properties, base64 body, headers) before Celery sees anything. It has no hook there
  (celery/kombu#2421): the exception escapes the event loop, the worker logs "Unrecoverable error" and
  stops once the tasks in flight are done. :func:`screen_brpop_replies` checks each BRPOP reply in
  redis-py's response callback for that command (the public way to shape a command's reply) and turns
  a malformed one into "nothing arrived", which kombu sees every second when BRPOP times out. The
  message is already off the list and never entered ``unacked``, so nothing redelivers it.
* Celery's consumer handles a message that names no task or an unknown one, or whose body it cannot
  deserialise, in hooks that log the whole body and headers. A known task name with, say, no ``id``
  header, or a body that is not ``[args, kwargs, embed]``, raises out of them instead: the worker
  stops and puts the message back on the queue for the next worker to stop on. :class:`Consumer`
  replaces those hooks and catches what escapes them.
"""

from __future__ import annotations

import enum
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.utils import encoding, json

from tenant_worker.adapters.redis_queues import count_discarded

log = logging.getLogger(__name__)

# How kombu's Redis transport reads a list item, so the screen judges exactly what kombu would parse
# (including kombu's JSON object hook, which rejects unknown "__type__" values).
bytes_to_str: Callable[[bytes], str] = encoding.bytes_to_str
kombu_loads: Callable[[str], Any] = json.loads


class Reason(enum.StrEnum):
    """Why a message was discarded; the values name the counters, so operators rely on them."""

    NOT_JSON = "not_json"
    NOT_AN_ENVELOPE = "not_an_envelope"
    HEADERS_NOT_A_MAPPING = "headers_not_a_mapping"
    UNDECODABLE_BODY = "undecodable_body"
    NOT_A_TASK = "not_a_task"
    UNKNOWN_TASK = "unknown_task"
    INVALID_TASK = "invalid_task"


Report = Callable[[str, Reason, str], None]


def item_problem(item: bytes, channel: Any) -> Reason | None:
    """What keeps kombu's Redis ``channel`` from delivering this list item, or None.

    The envelope fields checked are the ones kombu's virtual ``Message`` and the Redis ``QoS.append``
    read without checking; the body (base64, compression) is judged by kombu's own ``Message``.
    """
    try:
        payload = kombu_loads(bytes_to_str(item))
    except Exception:  # ValueError for most, RecursionError for absurd nesting
        return Reason.NOT_JSON
    if not isinstance(payload, dict):
        return Reason.NOT_AN_ENVELOPE
    properties = payload.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str):
        return Reason.NOT_AN_ENVELOPE
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in ("exchange", "routing_key")):
        return Reason.NOT_AN_ENVELOPE
    if not isinstance(payload.get("headers") or {}, dict):
        return Reason.HEADERS_NOT_A_MAPPING
    try:
        channel.Message(payload, channel=channel)
    except Exception:
        return Reason.UNDECODABLE_BODY
    return None


def screen_brpop_replies(channel: Any, report: Report) -> None:
    """Make ``channel`` (kombu's Redis channel) drop and ``report`` malformed messages it pops."""
    client = channel.client  # the client kombu sends BRPOP on and parses its replies with
    shape = client.response_callbacks.get("BRPOP")  # redis-py's own: [key, item] -> (key, item)

    def screen(response: Any, **options: Any) -> Any:
        if response:
            key, item = response
            problem = item_problem(item, channel)
            if problem is not None:
                # Priority sub-lists are "<queue><sep><step>"; kombu strips the suffix the same way.
                report(bytes_to_str(key).rsplit(channel.sep, 1)[0], problem, f"{len(item)} bytes")
                return None
        return shape(response, **options) if shape else response

    client.set_response_callback("BRPOP", screen)


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer (``worker_consumer``) with malformed messages logged, counted and removed."""

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], None]:
        """Celery's handler of each task message, guarded; and the BRPOP screen on the task channel.

        Celery calls this each time the consumer (re)connects, right before it consumes from a fresh
        channel, so every channel the worker reads tasks from is screened.

        Everything Celery does between receiving a message and handing the request to the pool is
        work on that message in memory, so an exception there means the message is one Celery cannot
        run; it is discarded rather than allowed to stop the worker (which would requeue it for the
        next worker to stop on). If it ever hid a bug in Celery instead, the log line names the
        exception and where it was raised, and the reminders' rows are republished from the ledger.
        """
        screen_brpop_replies(self.task_consumer.channel, self._report)
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> None:
            try:
                handle(message)
            except Exception as exc:
                self._discard(message, Reason.INVALID_TASK, _where(exc))

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """The body does not deserialise (not JSON, bad compression): Celery would log the body."""
        self._discard(message, Reason.UNDECODABLE_BODY, _where(exc))

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message that names no task."""
        self._discard(message, Reason.NOT_A_TASK)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A task this worker does not have: Celery would log body and headers, and store a failed
        result nobody reads (every tenant-worker task ignores results)."""
        self._discard(message, Reason.UNKNOWN_TASK)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A content type we refuse (only JSON is accepted), or a bad ETA or expiry."""
        self._discard(message, Reason.INVALID_TASK, _where(exc))

    def _discard(self, message: Any, reason: Reason, detail: str = "") -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        described = [f"{name} {_short(headers.get(name))}" for name in ("task", "id") if name in headers]
        if message.content_type != "application/json":
            described.append(f"content type {_short(message.content_type)}")
        self._report(self._queue_of(message), reason, ", ".join(part for part in [*described, detail] if part))
        if not message.acknowledged:
            message.reject_log_error(log, self.connection_errors)

    def _queue_of(self, message: Any) -> str:
        """The queue a task message came from: its routing key, when that is a queue this worker
        consumes (Celery routes every task by its queue's name); never a text taken blindly from it."""
        key = (message.delivery_info or {}).get("routing_key")
        return str(key) if key in {queue.name for queue in self.task_consumer.queues} else "?"

    def _report(self, queue: str, reason: Reason, detail: str) -> None:
        log.error(
            "discarded a malformed message from queue %s: %s%s; its body is not logged",
            queue, reason, f" ({detail})" if detail else "",
        )  # fmt: skip
        try:
            with self.task_consumer.channel.conn_or_acquire() as client:
                count_discarded(client, queue, reason)
        except redis.RedisError as exc:
            log.warning("could not count the discarded message: %s", exc)


def _where(exc: BaseException) -> str:
    """The exception's type and where it was raised: enough to tell what failed, without its text,
    which may quote the message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    frame = frames[-1]
    path = Path(frame.filename)
    return f"{type(exc).__name__} at {path.parent.name}/{path.name}:{frame.lineno}"


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
