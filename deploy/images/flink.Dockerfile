# syntax=docker/dockerfile:1.7
# The Flink jobs (stream_processors/) on the official Flink image: in /opt/flink/lib the connector jars of
# deploy/local/poms/flink.xml and Hadoop's shaded client of deploy/images/poms/flink-hadoop.xml (Flink's file system
# for the hdfs:// checkpoint, savepoint and HA directories of deploy/k8s/base/flink/jobs.yaml), a portable CPython 3.11
# with the locked PyFlink environment (deploy/bootstrap/envs/flink), the jobs' code under /opt/freightline. Run by the
# Flink Kubernetes Operator (deploy/k8s/base/flink/) or as the compose jobmanager/taskmanager.
ARG FLINK_IMAGE=flink:2.0.0-scala_2.12-java17
ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

FROM ${MAVEN_IMAGE} AS jars
WORKDIR /build
COPY deploy/local/poms/flink.xml pom.xml
RUN mvn -q -B dependency:copy-dependencies -DoutputDirectory=/build/lib
COPY deploy/images/poms/flink-hadoop.xml hadoop/pom.xml
RUN mvn -q -B -f hadoop/pom.xml dependency:copy-dependencies -DoutputDirectory=/build/lib -DincludeScope=runtime

FROM ${MAVEN_IMAGE} AS python
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
WORKDIR /build
COPY deploy/bootstrap/envs/flink/pyproject.toml deploy/bootstrap/envs/flink/uv.lock ./
RUN uv python install 3.11 && uv sync --frozen --no-install-project --python 3.11

FROM ${FLINK_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="freightline-flink-jobs" \
      org.opencontainers.image.description="Freightline PyFlink jobs on Apache Flink with the Kafka, Avro-Confluent and JDBC connectors and HDFS" \
      org.opencontainers.image.source="https://github.com/freightline/freightline" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Freightline" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=jars /build/lib/ /opt/flink/lib/
COPY --from=python /opt/python /opt/python
COPY --from=python /opt/venv /opt/venv
COPY --chown=flink:flink schemas/ /opt/freightline/schemas/
COPY --chown=flink:flink services/__init__.py /opt/freightline/services/__init__.py
COPY --chown=flink:flink services/common/ /opt/freightline/services/common/
COPY --chown=flink:flink stream_processors/ /opt/freightline/stream_processors/
RUN ln -s /opt/flink/opt/flink-python-*.jar /opt/flink/lib/ \
 && ln -s /opt/flink/plugins/metrics-prometheus /opt/flink/plugins/prometheus 2>/dev/null || true
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/freightline \
    PYFLINK_CLIENT_EXECUTABLE=/opt/venv/bin/python \
    PYFLINK_EXECUTABLE=/opt/venv/bin/python
USER 9999:9999
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/overview', timeout=4)"]
