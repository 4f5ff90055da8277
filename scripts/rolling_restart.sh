#!/usr/bin/env bash
# Restart tenant-worker's workers (and beat) one process at a time, without a pool ever stopping to
# consume and without cutting a batch short (README "Restarts").
#
#   scripts/rolling_restart.sh compose [SERVICE...]   # default: every worker-* service, then beat
#   scripts/rolling_restart.sh k8s [DEPLOYMENT...]    # default: every tenant-worker worker Deployment, then beat
#
# compose: for each running container of a pool, start one more container of the service (the new
# image, if one was built), wait until its healthcheck (`tenant-worker probe worker --ready`) passes,
# then stop the old one with SIGTERM and STOP_GRACE seconds to finish: Celery's warm shutdown finishes
# the batches it is running, and the messages it had prefetched go back to the queue (kombu restores
# unacknowledged messages when the worker closes its channel). Beat is recreated last: it releases its
# lock on SIGTERM, so the new one (or the standby) leads at once.
# k8s: `kubectl rollout restart` per Deployment; the Deployments surge first (maxSurge 1,
# maxUnavailable 0) and wait for the readiness probe, and each pod gets terminationGracePeriodSeconds.
set -euo pipefail

STOP_GRACE=${STOP_GRACE:-360}           # > task_time_limit (300 s): the longest a batch can run
HEALTHY_TIMEOUT=${HEALTHY_TIMEOUT:-180}  # seconds to wait for a new container's healthcheck
COMPOSE=${COMPOSE:-docker compose}
NAMESPACE=${NAMESPACE:-tenant-worker}

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

wait_healthy() {  # container id
  local deadline=$((SECONDS + HEALTHY_TIMEOUT)) state
  while :; do
    state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1")
    case "$state" in
      healthy) return 0 ;;
      unhealthy | exited | dead) echo "error: new container $1 is $state; old containers left running" >&2; return 1 ;;
    esac
    if ((SECONDS >= deadline)); then
      echo "error: new container $1 not healthy after ${HEALTHY_TIMEOUT}s; old containers left running" >&2
      return 1
    fi
    sleep 2
  done
}

restart_compose_service() {  # service
  local service=$1 old new count
  mapfile -t old < <($COMPOSE ps -q "$service")
  for id in "${old[@]}"; do
    count=$($COMPOSE ps -q "$service" | wc -l)
    echo "$service: starting a replacement for ${id:0:12}"
    $COMPOSE up -d --no-deps --no-recreate --scale "$service=$((count + 1))" "$service" >/dev/null
    new=$($COMPOSE ps -q "$service" | grep -vxF -f <(printf '%s\n' "${old[@]}") | tail -n 1)
    wait_healthy "$new"
    echo "$service: warm shutdown of ${id:0:12} (up to ${STOP_GRACE}s)"
    docker stop -t "$STOP_GRACE" "$id" >/dev/null
    docker rm "$id" >/dev/null
  done
}

compose() {
  local services=("$@")
  if ((${#services[@]} == 0)); then
    mapfile -t services < <($COMPOSE config --services | grep '^worker-' || true)
    services+=(beat)
  fi
  for service in "${services[@]}"; do
    if [[ $service == beat ]]; then
      echo "beat: recreating (the lock is released on SIGTERM)"
      $COMPOSE up -d --no-deps --force-recreate beat >/dev/null
    else
      restart_compose_service "$service"
    fi
  done
}

k8s() {
  local deployments=("$@")
  if ((${#deployments[@]} == 0)); then
    mapfile -t deployments < <(kubectl -n "$NAMESPACE" get deployments -l app.kubernetes.io/name=tenant-worker \
      -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | grep -- '-worker-' || true)
    deployments+=(tenant-worker-beat)
  fi
  for deployment in "${deployments[@]}"; do
    echo "$deployment: rolling restart"
    kubectl -n "$NAMESPACE" rollout restart "deployment/$deployment"
    kubectl -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout="$((STOP_GRACE + HEALTHY_TIMEOUT))s"
  done
}

case "${1:-}" in
  compose) shift; compose "$@" ;;
  k8s) shift; k8s "$@" ;;
  *) usage ;;
esac
echo "done; check with: tenant-worker status"
