"""tenant-worker: multi-tenant payment-reminder SMS on Celery, PostgreSQL and MessageBird."""
