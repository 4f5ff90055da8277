"""Every queue name and Redis key prefix in one place, so routing and monitoring agree on them."""

# Send tasks: one queue for now; sharding per tenant builds on these names.
SEND_QUEUE = "reminders.send"
# Sweeps and fan-out: kept apart from sends so a long send backlog never delays a sweep.
CONTROL_QUEUE = "reminders.control"
ALL_QUEUES = (SEND_QUEUE, CONTROL_QUEUE)

# Celery task names are part of the wire format (queued messages name them): never rename casually.
TASK_SEND_REMINDERS = "tenant_worker.send_reminders"
TASK_SWEEP_TENANT = "tenant_worker.sweep_tenant"
TASK_SWEEP_ALL = "tenant_worker.sweep_all_tenants"
TASK_RELEASE_DEFERRED = "tenant_worker.release_deferred"
TASK_SYNC_SCHEDULES = "tenant_worker.sync_schedules"

# RedBeat keys: entries are ``<prefix><name>``; RedBeat adds ``:schedule`` (the sorted set of due
# times), ``:lock`` and ``:statics`` to the prefix itself, so they sort under it too.
REDBEAT_KEY_PREFIX = "tenant_worker:beat:"
# Name of a tenant's daily sweep entry; its Redis key is REDBEAT_KEY_PREFIX + this.
TENANT_SCHEDULE_NAME = "sweep:{slug}"
