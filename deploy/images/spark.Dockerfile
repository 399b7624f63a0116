# syntax=docker/dockerfile:1.7
# The Spark batch jobs (batch_spark/): a slim Python base with Java 17 (Debian's headless JRE, no compilers), the
# locked Spark environment (deploy/bootstrap/envs/spark: pyspark brings Spark itself) and the jars of
# deploy/local/poms/spark.xml (spark-avro, the PostgreSQL driver, the GCS connector) in /opt/spark-jars.
# Run as a SparkApplication (deploy/k8s/base/spark/) or by the compose `spark` service.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

FROM ${MAVEN_IMAGE} AS jars
WORKDIR /build
COPY deploy/local/poms/spark.xml pom.xml
RUN mvn -q -B dependency:copy-dependencies -DoutputDirectory=/build/lib

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /build
COPY deploy/bootstrap/envs/spark/pyproject.toml deploy/bootstrap/envs/spark/uv.lock ./
RUN uv sync --frozen --no-install-project

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="freightline-spark-jobs" \
      org.opencontainers.image.description="Freightline Spark batch jobs (load_raw, daily_aggregates)" \
      org.opencontainers.image.source="https://github.com/freightline/freightline" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Freightline" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless=17.* procps=2:* \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 185 spark \
 && useradd --system --uid 185 --gid 185 --home-dir /opt/freightline --shell /usr/sbin/nologin spark
COPY --from=build /opt/venv /opt/venv
COPY --from=jars /build/lib/ /opt/spark-jars/
WORKDIR /opt/freightline
COPY schemas/ /opt/freightline/schemas/
COPY services/__init__.py /opt/freightline/services/__init__.py
COPY services/common/ /opt/freightline/services/common/
COPY batch_spark/ /opt/freightline/batch_spark/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/freightline \
    PYTHONUNBUFFERED=1 \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/venv/bin/python
USER 185:185
# A batch job: no long-running endpoint. The check proves the interpreter and pyspark load.
HEALTHCHECK --interval=60s --timeout=20s --retries=1 CMD ["python", "-c", "import pyspark"]
ENTRYPOINT ["python", "-m"]
CMD ["batch_spark.daily_batch", "--help"]
