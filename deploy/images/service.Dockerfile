# syntax=docker/dockerfile:1.7
# One recipe for every Freightline service (services/<name>): build with
#   docker build -f deploy/images/service.Dockerfile --build-arg SERVICE=<name> --build-arg HEALTH_PORT=<port> \
#     -t freightline/<name>:<version> .
# (the image names, tags and ports of each service are in deploy/manifests/services.py).
# Build stage: uv installs the locked dependencies (uv.lock, no dev group) into /opt/venv.
# Final stage: the slim Python base, the venv, the contracts and the services, a non-root user, no uv, no compilers.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
ARG HEALTH_PORT
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="freightline-${SERVICE}" \
      org.opencontainers.image.description="Freightline service ${SERVICE} (python -m services.${SERVICE})" \
      org.opencontainers.image.source="https://github.com/freightline/freightline" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Freightline" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
RUN groupadd --system --gid 10001 freightline \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin freightline
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY schemas/ /app/schemas/
COPY services/ /app/services/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FREIGHTLINE_SERVICE=${SERVICE} \
    HEALTH_PORT=${HEALTH_PORT} \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=${HEALTH_PORT}
USER 10001:10001
EXPOSE ${HEALTH_PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['HEALTH_PORT'], timeout=4)"]
# exec form through sh only to expand the service name; exec hands PID 1 (and SIGTERM) to Python.
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"services.${FREIGHTLINE_SERVICE}\" \"$@\"", "--"]
