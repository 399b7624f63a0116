# syntax=docker/dockerfile:1.7
# Airflow with Freightline's DAGs (dags/) and dbt project (dbt/). Airflow's locked environment lives in
# deploy/bootstrap/envs/airflow and dbt's in deploy/bootstrap/envs/dbt (each pyproject.toml + uv.lock); dbt keeps
# its own venv (/opt/dbt-venv) so its pins never meet Airflow's, and the DAGs call its executable (Cosmos
# subprocess mode, DBT_EXECUTABLE_PATH). The scheduler, API server and DAG processor all run this image
# (Airflow's official chart values in deploy/k8s/base/airflow/values.yaml; the compose `airflow` service).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /build/airflow
COPY deploy/bootstrap/envs/airflow/pyproject.toml deploy/bootstrap/envs/airflow/uv.lock ./
RUN UV_PROJECT_ENVIRONMENT=/opt/airflow-venv uv sync --frozen --no-install-project
WORKDIR /build/dbt
COPY deploy/bootstrap/envs/dbt/pyproject.toml deploy/bootstrap/envs/dbt/uv.lock ./
RUN UV_PROJECT_ENVIRONMENT=/opt/dbt-venv uv sync --frozen --no-install-project

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="freightline-airflow" \
      org.opencontainers.image.description="Airflow with the Freightline DAGs and dbt project" \
      org.opencontainers.image.source="https://github.com/freightline/freightline" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Freightline" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
RUN groupadd --system --gid 50000 airflow \
 && useradd --system --uid 50000 --gid 50000 --home-dir /opt/airflow --create-home --shell /usr/sbin/nologin airflow
COPY --from=build /opt/airflow-venv /opt/airflow-venv
COPY --from=build /opt/dbt-venv /opt/dbt-venv
COPY --chown=airflow:airflow dags/ /opt/airflow/dags/
COPY --chown=airflow:airflow dbt/ /opt/airflow/dbt/
COPY --chown=airflow:airflow schemas/ /opt/freightline/schemas/
# dbt_build renders its tasks from the project's manifest, parsed here once (parsing connects to no database)
RUN DBT_POSTGRES_HOST=unused DBT_POSTGRES_PORT=5432 DBT_POSTGRES_USER=unused DBT_POSTGRES_DBNAME=unused \
    DBT_TARGET_PATH=/opt/airflow/dbt-manifest DBT_LOG_PATH=/tmp/dbt-logs DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    /opt/dbt-venv/bin/dbt parse --project-dir /opt/airflow/dbt --profiles-dir /opt/airflow/dbt \
 && chown -R airflow:airflow /opt/airflow/dbt-manifest
ENV PATH=/opt/airflow-venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    DBT_PROJECT_DIR=/opt/airflow/dbt \
    DBT_EXECUTABLE_PATH=/opt/dbt-venv/bin/dbt \
    FREIGHTLINE_DBT_MANIFEST=/opt/airflow/dbt-manifest/manifest.json \
    PYTHONPATH=/opt/freightline
USER 50000:50000
WORKDIR /opt/airflow
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/v2/monitor/health', timeout=8)"]
ENTRYPOINT ["airflow"]
CMD ["api-server"]
