"""Every queue name and Redis key prefix in one place, so routing, pools and monitoring agree on them.

Queue names are part of the deployment contract: compose, the Kubernetes manifests and KEDA triggers
name them, and tenants store theirs in the database. Change them only with a migration.
"""

# Shard queues: a tenant's send tasks go to ``reminders.shard.NN`` (two digits, so names sort).
SHARD_QUEUE_PREFIX = "reminders.shard."
# Dedicated queues for large tenants: ``reminders.tenant.<slug>``.
DEDICATED_QUEUE_PREFIX = "reminders.tenant."
# Sweeps and fan-out: kept apart from sends so a long send backlog never delays a sweep.
CONTROL_QUEUE = "reminders.control"
# Celery's default queue: nothing is routed here on purpose. It drains tasks published before
# sharding existed (their old queue name) and anything a router could not place; the control pool
# consumes it so such a task is never stranded, and its depth should stay at zero.
DEFAULT_QUEUE = "reminders.send"
# The queues the control pool consumes.
CONTROL_POOL_QUEUES = (CONTROL_QUEUE, DEFAULT_QUEUE)

# SHARD_COUNT when not configured. Tenants store their queue, so changing it moves nobody.
DEFAULT_SHARD_COUNT = 16

# kombu's Redis transport keeps one list per priority step: the queue's own name for priority 0 and
# ``<queue>\x06\x16<step>`` for the others (kombu.transport.redis.Channel.sep / priority_steps).
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)

# Redis keys owned by tenant-worker (Celery's own keys are the queue lists, ``unacked*`` and
# ``celery-task-meta-*``).
ROUTES_VERSION_KEY = "tenant_worker:routes:version"
RATE_BUCKET_PREFIX = "tenant_worker:rate:"
GLOBAL_RATE_BUCKET = RATE_BUCKET_PREFIX + "global"
# The gateway circuit breaker: present while MessageBird rejects the access key (adapters/redis_breaker.py).
GATEWAY_BREAKER_KEY = "tenant_worker:gateway:breaker"
# Written by the recovery tick and never deleted: when it is missing, Redis lost its data (restarted
# without persistence, flushed) and with it every queued task (services/recovery.py).
BROKER_MARKER_KEY = "tenant_worker:broker:marker"
# Per-incident alert windows and counts: ``<prefix><tenant>:<status>:<reason>:gate|count|error``.
ALERT_KEY_PREFIX = "tenant_worker:alerts:"
# The incidents with a count waiting to be reported (a set of their key prefixes).
ALERTS_WAITING_KEY = "tenant_worker:alerts-waiting"
# Messages workers discarded as malformed: a hash of counters, field ``<queue>:<reason>``
# (adapters/celery_consumer.py); ``tenant-worker queues`` shows them. Deleting the key resets them.
DISCARDED_MESSAGES_KEY = "tenant_worker:discarded_messages"
# The HTTP API: each key's request bucket (``<prefix><key id>``) and each remembered
# ``Idempotency-Key`` (``<prefix><scope>:<sha256 of the key>``).
API_RATE_PREFIX = "tenant_worker:api:rate:"
IDEMPOTENCY_PREFIX = "tenant_worker:api:idem:"

# MessageBird's signed webhooks: a token id (``jti``) already seen is refused as a replay until the
# token would have expired anyway (``<prefix><jti>``, adapters/messagebird_webhooks.py).
WEBHOOK_SEEN_PREFIX = "tenant_worker:webhook-jti:"
# Where MessageBird sends status reports (``reportUrl`` = PUBLIC_BASE_URL + this) and inbound SMS.
DLR_PATH = "/v1/dlr/messagebird"
INBOUND_PATH = "/v1/inbound/messagebird"

# Celery task names are part of the wire format (queued messages name them): never rename casually.
TASK_SEND_REMINDERS = "tenant_worker.send_reminders"
TASK_SWEEP_TENANT = "tenant_worker.sweep_tenant"
TASK_SWEEP_ALL = "tenant_worker.sweep_all_tenants"
TASK_RELEASE_DEFERRED = "tenant_worker.release_deferred"
TASK_SYNC_SCHEDULES = "tenant_worker.sync_schedules"
TASK_RECOVER = "tenant_worker.recover"
TASK_PRUNE_LEDGER = "tenant_worker.prune_ledger"

# RedBeat keys: entries are ``<prefix><name>``; RedBeat adds ``:schedule`` (the sorted set of due
# times), ``:lock`` and ``:statics`` to the prefix itself, so they sort under it too.
REDBEAT_KEY_PREFIX = "tenant_worker:beat:"
# Name of a tenant's daily sweep entry; its Redis key is REDBEAT_KEY_PREFIX + this.
TENANT_SCHEDULE_NAME = "sweep:{slug}"
# Tasks that carry a tenant id as their first argument and follow the tenant's queue.
TENANT_SCOPED_TASKS = frozenset({TASK_SEND_REMINDERS})
CONTROL_TASKS = frozenset(
    {TASK_SWEEP_TENANT, TASK_SWEEP_ALL, TASK_RELEASE_DEFERRED, TASK_SYNC_SCHEDULES, TASK_RECOVER, TASK_PRUNE_LEDGER}
)


def shard_queue(shard: int) -> str:
    """The queue of shard ``shard``: ``reminders.shard.03``."""
    return f"{SHARD_QUEUE_PREFIX}{shard:02d}"


def dedicated_queue(slug: str) -> str:
    """The queue of a tenant with a dedicated pool: ``reminders.tenant.<slug>``."""
    return f"{DEDICATED_QUEUE_PREFIX}{slug}"


# Each live worker and beat process writes ``<prefix><kind>:<name>`` (JSON: queues, pid, leading, at)
# every HEARTBEAT_INTERVAL seconds with a TTL of HEARTBEAT_TTL: `tenant-worker status` lists them and
# `tenant move --dedicated` checks a pool consumes the new queue, without a broadcast ping.
HEARTBEAT_PREFIX = "tenant_worker:heartbeat:"
HEARTBEAT_INTERVAL = 10.0
HEARTBEAT_TTL = 35
# One worker or beat per container: the container's own /tmp. The file holds nothing but its mtime.
DEFAULT_HEARTBEAT_FILE = "/tmp/tenant-worker.heartbeat"  # noqa: S108
