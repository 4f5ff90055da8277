"""tenant-worker: multi-tenant payment-reminder SMS on Celery, PostgreSQL and MessageBird."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tenant-worker")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
