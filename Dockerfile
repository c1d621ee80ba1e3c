# syntax=docker/dockerfile:1
# One image for the code location (gRPC code server, the default command), the webserver
# (`dagster-webserver -h 0.0.0.0 -p 3000 -w /app/workspace.yaml`) and the daemon
# (`dagster-daemon run -w /app/workspace.yaml`). Dependencies come from uv.lock, nothing
# unpinned. Pure-Python wheels or multi-arch wheels only, so it builds for amd64 and arm64
# (Raspberry Pi): docker buildx build --platform linux/amd64,linux/arm64 -t solar-pipeline .
#
# Runs execute inside the code-server container (Dagster's DefaultRunLauncher): it alone mounts
# the /data volume with the DuckDB file, which allows one writer process per file.

# Both stages must use the same Python: the virtualenv is copied from one to the other.
# Pin by digest in production (python:3.11-slim-bookworm@sha256:...) for reproducible builds.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The same uv as the Makefile and the dev group of pyproject.toml.
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
WORKDIR /app
# Dependencies first, in their own layer: code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra k8s --no-install-project
COPY solar_pipeline ./solar_pipeline
# --no-editable: the package goes into site-packages, so the final stage needs no source tree.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra k8s --no-editable

FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric uid/gid (Kubernetes' runAsNonRoot can only check a numeric USER).
# DAGSTER_HOME/storage (compute logs) and /data are the only writable places; named volumes
# mounted there start with this ownership and mode (/data private: the pipeline never changes
# the mode of a directory that exists).
RUN groupadd --system --gid 10001 solar \
 && useradd --system --uid 10001 --gid solar --create-home --home-dir /home/solar \
      --shell /usr/sbin/nologin solar \
 && mkdir -p /opt/dagster/dagster_home/storage /data \
 && chown solar:solar /opt/dagster/dagster_home/storage /data \
 && chmod 700 /data
COPY --from=build /app/.venv /app/.venv
# The deployment instance: runs, event logs and schedules in PostgreSQL (DAGSTER_PG_* variables).
COPY deploy/dagster.postgres.yaml /opt/dagster/dagster_home/dagster.yaml
# For the webserver and the daemon: the code location over gRPC at code:4000.
COPY deploy/workspace.yaml /app/workspace.yaml
# /opt/dagster/dagster_home is also the Dagster Helm chart's default dagsterHome.
ENV PATH=/app/.venv/bin:$PATH \
    VIRTUAL_ENV=/app/.venv \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    SOLAR_DATA_DIR=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /app
VOLUME ["/data"]
EXPOSE 3000 4000
# Fits the default command; the webserver and daemon services override it.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "solar_pipeline.definitions", "--location-name", "solar_pipeline"]
