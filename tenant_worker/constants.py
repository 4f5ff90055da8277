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
