#!/usr/bin/env bash
# Make sure the local PostgreSQL and Redis this project's demo and tests use are running.
# Starts them when they are installed but stopped; fails loudly when they are missing.
set -euo pipefail

PGHOST_ADDR=${PGHOST_ADDR:-127.0.0.1}
PGPORT=${PGPORT:-5432}

pg_ready() { pg_isready -q -h "$PGHOST_ADDR" -p "$PGPORT" 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1; then
  echo "error: PostgreSQL client tools (pg_isready) not found; install PostgreSQL 13+" >&2
  exit 1
fi
if ! pg_ready; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      echo "starting PostgreSQL $version/main"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  pg_ready || { echo "error: PostgreSQL is not reachable on $PGHOST_ADDR:$PGPORT" >&2; exit 1; }
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "error: redis-server not found; install Redis 6+ (the tests start their own password-protected instances)" >&2
  exit 1
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis on 127.0.0.1:6379"
  mkdir -p /tmp/tenant-worker-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/tenant-worker-redis --logfile /tmp/tenant-worker-redis/redis.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "error: Redis did not start" >&2; exit 1; }
fi
echo "services ready: PostgreSQL $PGHOST_ADDR:$PGPORT, Redis 127.0.0.1:6379"
