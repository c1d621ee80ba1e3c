# One image for the code location (gRPC code server, the default command), the webserver
# (`dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml`) and the daemon
# (`dagster-daemon run -w workspace.yaml`). Dependencies come from uv.lock, nothing unpinned.
# Pure-Python wheels or multi-arch wheels only: builds on amd64 and arm64 (Raspberry Pi).

FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
# Dependencies first, in their own layer: code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra k8s --no-install-project
COPY solar_pipeline ./solar_pipeline
RUN uv sync --frozen --no-dev --extra k8s --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 solar \
 && mkdir -p /opt/dagster/home /data \
 && chown -R solar /opt/dagster/home /data
COPY --from=build /app/.venv /app/.venv
COPY workspace.yaml dagster.yaml /app/
COPY dagster.yaml /opt/dagster/home/dagster.yaml
ENV PATH=/app/.venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    SOLAR_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER solar
WORKDIR /app
VOLUME ["/data"]
EXPOSE 3000 4000
# Fits the default command; the webserver and daemon services override it.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
  CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "solar_pipeline.definitions"]
