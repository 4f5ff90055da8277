# syntax=docker/dockerfile:1
# The tenant-worker image: `docker build -t tenant-worker .`, or let docker-compose.yml build it.
#
# Two stages: the builder installs the project and its dependencies into a virtualenv, and the
# runtime stage copies only that virtualenv, so the build backend, pip's caches and the source tree
# stay out of the final image. Every dependency ships as a manylinux or pure-Python wheel, so no
# compiler is needed. Nothing secret is baked in: credentials arrive at run time through
# REDIS_PASSWORD_FILE, DATABASE_PASSWORD_FILE and friends (see docker-compose.yml).

FROM python:3.11-slim AS builder

RUN python -m venv /opt/venv
WORKDIR /src
# Only what `pip install .` reads; the Alembic migrations ship inside the package as package data.
# The development-only package in dev/ (the MessageBird and Sentry emulators) stays out of the image.
# constraints.txt pins every dependency to the versions the test suite ran with (`make lock`).
COPY pyproject.toml README.md constraints.txt ./
COPY tenant_worker ./tenant_worker
# The build backend needs setuptools>=77 (PEP 639 license string); pip fetches it in an isolated
# build environment. A current pip avoids surprises with the newest wheel metadata.
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -c constraints.txt .


# Same base image as the builder: the venv's python is a symlink to /usr/local/bin/python3.11.
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

# A fixed numeric uid lets orchestrators verify "runs as non-root" and lets operators make secret
# files readable by it. The home directory doubles as the working directory because celery beat
# writes its schedule file (celerybeat-schedule) to the current directory.
RUN groupadd --system --gid 10001 tenant-worker \
    && useradd --system --uid 10001 --gid tenant-worker --home-dir /var/lib/tenant-worker \
        --create-home --shell /usr/sbin/nologin tenant-worker

COPY --from=builder /opt/venv /opt/venv

WORKDIR /var/lib/tenant-worker
USER 10001:10001

# No HEALTHCHECK: the only meaningful probe, `celery inspect ping`, starts a second Celery client
# and round-trips through the broker every interval, which costs more than it tells. A worker that
# loses Redis or PostgreSQL exits (or retries and logs), and the restart policy handles the rest.
ENTRYPOINT ["tenant-worker"]
CMD ["worker", "--loglevel", "INFO"]
