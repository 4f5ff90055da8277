"""Alembic migrations, shipped inside the package so ``tenant-worker db upgrade`` works when installed."""
