"""The images, the compose file and the Kubernetes overlays agree with the code: every service is deployed
everywhere with every variable its settings need, on the port and probe paths it serves; every catalogue topic is a
KafkaTopic with the catalogue's settings; every image is pinned. Each check is also shown failing on a copy with
something taken out."""

from __future__ import annotations

import copy
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.manifests import consistency
from deploy.manifests.consistency import (
    compose_environment,
    compose_health_problems,
    compose_profile_problems,
    compose_secret_ok,
    compose_service_of,
    environment_problems,
    k8s_environment,
    k8s_port_problems,
    k8s_secret_ok,
    missing_services,
    python_services,
    scaling_problems,
    settings_env_problems,
    topic_problems,
    unpinned,
    workload_of,
)
from deploy.manifests.kubernetes import CONTRACTS_MODULE, ROOT, generated_files
from deploy.manifests.services import HEALTH_PATH, READY_PATH, SERVICES, by_name
from deploy.manifests.settings_env import module_variables, service_variables, settings_classes
from schemas.catalogue import Catalogue
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.settings import HdfsSettings, KafkaSettings, ServiceSettings
from services.schema_registry.app import UNAUTHENTICATED
from stream_processors.window_jobs import JOBS as WINDOW_JOBS

OVERLAYS = ("dev", "prod")
Docs = list[dict[str, Any]]


def without(docs: Docs, kind: str, name: str) -> Docs:
    return [d for d in docs if not (d.get("kind") == kind and d["metadata"]["name"] == name)]


# ---------------------------------------------------------------- every service everywhere


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_an_image_a_compose_service_and_a_workload(
    overlay: str, compose: dict[str, Any], rendered: dict[str, Docs]
) -> None:
    names = python_services()
    assert len(names) == len(SERVICES) == 8
    assert missing_services(names, compose, rendered[overlay]) == []


def test_a_service_missing_from_compose_or_kubernetes_is_reported(
    compose: dict[str, Any], rendered: dict[str, Docs]
) -> None:
    trimmed = copy.deepcopy(compose)
    del trimmed["services"]["sink-hdfs"]
    assert missing_services(["sink_hdfs"], trimmed, rendered["dev"]) == ["sink_hdfs: no compose service builds it"]
    docs = without(rendered["dev"], "Deployment", "sink-hdfs")
    assert missing_services(["sink_hdfs"], compose, docs) == ["sink_hdfs: no Kubernetes workload sink-hdfs"]
    assert missing_services(["billing"], compose, rendered["dev"]) == [
        "billing: no entry in deploy/manifests/services.py"
    ]


# ---------------------------------------------------------------- environment


def test_the_settings_a_service_reads_are_found_in_its_code() -> None:
    sink = settings_classes("sink_hdfs")
    assert HdfsSettings in sink and KafkaSettings in sink and ServiceSettings in sink  # through the sink runner
    assert {"HDFS_WEBHDFS_URL", "SINK_HDFS_ROOT", "KAFKA_BOOTSTRAP_SERVERS", "METRICS_PORT"} <= set(
        service_variables("sink_hdfs")
    )
    assert "HDFS_WEBHDFS_URL" not in service_variables("sink_gcs")
    assert service_variables("enricher")["ENRICHER_DATA_DIR"].must_set  # its default is the checkout's state dir
    assert service_variables("mirror")["REMOTE_KAFKA_SASL_PASSWORD"].secret


@pytest.mark.parametrize("name", [s.name for s in SERVICES])
def test_compose_sets_every_variable_a_service_needs(name: str, compose: dict[str, Any]) -> None:
    found = compose_service_of(compose, name)
    assert found is not None
    service, body = found
    problems = environment_problems(name, compose_environment(body), f"compose {service}", secret_ok=compose_secret_ok)
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", [s.name for s in SERVICES])
def test_kubernetes_sets_every_variable_a_service_needs(name: str, overlay: str, rendered: dict[str, Docs]) -> None:
    docs = rendered[overlay]
    workload = workload_of(docs, by_name(name))
    assert workload is not None
    problems = environment_problems(name, k8s_environment(docs, workload), f"k8s {overlay}", secret_ok=k8s_secret_ok)
    assert problems == []


def test_a_missing_unknown_or_literal_secret_variable_is_reported(
    compose: dict[str, Any], rendered: dict[str, Docs]
) -> None:
    _, body = compose_service_of(compose, "mirror") or ("", {})
    env = compose_environment(body)
    del env["KAFKA_BOOTSTRAP_SERVERS"]
    env["MIRROR_TOPICZ"] = "typo"
    env["REMOTE_KAFKA_SASL_PASSWORD"] = "hunter2"  # pragma: allowlist secret
    assert environment_problems("mirror", env, "compose mirror", secret_ok=compose_secret_ok) == [
        "compose mirror: KAFKA_BOOTSTRAP_SERVERS is not set (KafkaSettings.bootstrap_servers)",
        "compose mirror: MIRROR_TOPICZ is set but nothing there reads such a variable",
        "compose mirror: secret REMOTE_KAFKA_SASL_PASSWORD has a literal value",
    ]
    docs = copy.deepcopy(rendered["prod"])
    config = next(d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "enricher-config")
    del config["data"]["ENRICHER_DATA_DIR"]
    config["data"]["METRICS_PORT"] = "9999"
    workload = workload_of(docs, by_name("enricher"))
    assert workload is not None
    assert environment_problems("enricher", k8s_environment(docs, workload), "k8s", secret_ok=k8s_secret_ok) == [
        "k8s: ENRICHER_DATA_DIR is not set (EnricherSettings.data_dir)",
        "k8s: METRICS_PORT 9999 is not 9403",
    ]


# ---------------------------------------------------------------- ports and probes


def test_services_serve_the_probe_paths_the_manifests_use() -> None:
    server = MetricsServer(ServiceMetrics("probe_paths_test"), "127.0.0.1", 0).start()
    try:
        for path in (HEALTH_PATH, READY_PATH, "/metrics"):
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
                assert response.status == 200
    finally:
        server.stop()
    assert {HEALTH_PATH, READY_PATH, "/metrics"} <= UNAUTHENTICATED  # the registry answers probes without auth


@pytest.mark.parametrize("name", [s.name for s in SERVICES])
def test_ports_and_probes_match_the_service(name: str, compose: dict[str, Any], rendered: dict[str, Docs]) -> None:
    service = by_name(name)
    found = compose_service_of(compose, name)
    assert found is not None
    assert compose_health_problems(service, found[1]) == []
    for docs in rendered.values():
        workload = workload_of(docs, service)
        assert workload is not None
        assert k8s_port_problems(service, docs, workload) == []


def test_a_wrong_port_or_probe_path_is_reported(compose: dict[str, Any], rendered: dict[str, Docs]) -> None:
    service = by_name("sink_gcs")
    _, body = compose_service_of(compose, "sink_gcs") or ("", {})
    body = copy.deepcopy(body)
    body["healthcheck"]["test"] = ["CMD", "true"]
    assert compose_health_problems(service, body) == [
        "compose sink_gcs: health check does not probe 127.0.0.1:9407/healthz"
    ]
    docs = copy.deepcopy(rendered["dev"])
    workload = workload_of(docs, service)
    assert workload is not None
    workload["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/ready"
    assert k8s_port_problems(service, without(docs, "PodDisruptionBudget", "sink-gcs"), workload) == [
        "k8s sink-gcs: readinessProbe is not /readyz on 9407",
        "k8s sink-gcs: no PodDisruptionBudget sink-gcs",
    ]


# ---------------------------------------------------------------- topics and scaling


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_catalogue_topic_is_a_kafka_topic_with_its_settings(
    overlay: str, catalogue: Catalogue, rendered: dict[str, Docs]
) -> None:
    assert topic_problems(catalogue, rendered[overlay]) == []
    assert scaling_problems(catalogue, rendered[overlay]) == []


def test_a_missing_or_different_topic_is_reported(catalogue: Catalogue, rendered: dict[str, Docs]) -> None:
    docs = copy.deepcopy(rendered["prod"])
    topics = {d["spec"]["topicName"]: d for d in docs if d.get("kind") == "KafkaTopic"}
    docs.remove(topics["commerce.orders.v1"])
    topics["reference.products.v1"]["spec"]["config"]["cleanup.policy"] = "delete"
    topics["web.clickstream.v1"]["spec"]["partitions"] = 6
    assert topic_problems(catalogue, docs) == [
        "topic web.clickstream.v1: 6 partitions, the catalogue says 3",
        "topic commerce.orders.v1: no KafkaTopic",
        "topic reference.products.v1: cleanup.policy=delete, the catalogue says compact",
    ]
    scaled = next(d for d in docs if d.get("kind") == "ScaledObject" and d["metadata"]["name"] == "sink-mongodb")
    scaled["spec"]["maxReplicaCount"] = 4
    assert scaling_problems(catalogue, docs) == [
        "sink-mongodb: up to 4 replicas on web.product_views.v1's 3 partitions"
    ]


# ---------------------------------------------------------------- pinned images, compose profiles, generated files


def test_every_image_is_pinned(compose: dict[str, Any], rendered: dict[str, Docs]) -> None:
    images = consistency.images_in(compose) + [i for docs in rendered.values() for i in consistency.images_in(docs)]
    for dockerfile in sorted(consistency.IMAGES_DIR.glob("*.Dockerfile")):
        images += consistency.dockerfile_images(dockerfile.read_text())
    assert len(images) > 20
    assert unpinned(images) == []
    assert unpinned(["grafana/grafana", "mongo:latest", "prom/prometheus:v2.55.1", "busybox:stable"]) == [
        "busybox:stable",
        "grafana/grafana",
        "mongo:latest",
    ]


def test_every_compose_profile_starts_what_it_depends_on(compose: dict[str, Any]) -> None:
    assert compose_profile_problems(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["kafka"]["profiles"] = ["core"]
    del broken["services"]["hdfs-datanode"]["healthcheck"]
    problems = compose_profile_problems(broken)
    assert "profile lake: sink-hdfs depends on kafka, which it does not start" in problems
    assert "profile lake: hdfs-datanode has no health check for sink-hdfs to wait on" in problems


def test_the_committed_manifests_are_the_generators_output() -> None:
    files = generated_files()
    stale = [str(path) for path, content in files.items() if (ROOT / path).read_text() != content]
    assert stale == [], "run python -m deploy.manifests"
    committed = {p.relative_to(ROOT) for p in (ROOT / "deploy/k8s/base/services").glob("*.yaml")}
    assert committed == {p for p in files if p.parent.name == "services"}


def test_the_generator_follows_the_catalogue(monkeypatch: pytest.MonkeyPatch, catalogue: Catalogue) -> None:
    import dataclasses

    from deploy.manifests import kubernetes

    changed = dataclasses.replace(catalogue.topic("commerce.orders.v1"), partitions=12)
    edited = dataclasses.replace(
        catalogue, topics=tuple(changed if t.name == changed.name else t for t in catalogue.topics)
    )
    monkeypatch.setattr(kubernetes, "load_catalogue", lambda: edited)
    topics_file = Path("deploy/k8s/base/kafka/topics.yaml")
    assert generated_files()[topics_file] != (ROOT / topics_file).read_text()


# ---------------------------------------------------------------- the jobs: Flink, Spark; pinned operator versions


def window_job_modules() -> set[str]:
    """The window jobs in ``stream_processors/``: each module declaring a ``JOB`` and its ``main``."""
    return {
        p.stem
        for p in (ROOT / "stream_processors").glob("*.py")
        if re.search(r"^JOB\b", p.read_text(), re.MULTILINE) and "def main" in p.read_text()
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_runs_the_window_jobs_as_one_flink_job_as_the_product_does(
    overlay: str, rendered: dict[str, Docs]
) -> None:
    assert set(WINDOW_JOBS) == window_job_modules()  # the registry holds every window job
    jobs = [d for d in rendered[overlay] if d.get("kind") == "FlinkDeployment"]
    assert [d["spec"]["job"]["args"] for d in jobs] == [["-pym", "stream_processors.window_jobs", *WINDOW_JOBS]]
    assert consistency.flink_job_problems(rendered[overlay]) == []


def test_compose_runs_the_window_jobs_as_one_flink_job_as_the_product_does(compose: dict[str, Any]) -> None:
    command = compose["services"]["flink-jobs"]["command"]
    assert command[command.index("-py") + 1] == "/opt/freightline/stream_processors/window_jobs.py"
    assert command[-len(WINDOW_JOBS) :] == list(WINDOW_JOBS)
    assert consistency.compose_flink_problems(compose) == []


def flink_parts(docs: Docs) -> tuple[dict[str, Any], dict[str, str]]:
    """The FlinkDeployment's spec and its ConfigMap's data (to edit in a copy)."""
    spec = next(d for d in docs if d.get("kind") == "FlinkDeployment")["spec"]
    config = next(d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "window-jobs-config")
    return spec, config["data"]


def test_kubernetes_running_other_window_jobs_or_settings_than_the_product_is_reported(
    rendered: dict[str, Docs],
) -> None:
    where = "FlinkDeployment window-jobs"
    docs = copy.deepcopy(rendered["prod"])
    spec, _ = flink_parts(docs)
    per_job = [copy.deepcopy(d) for d in docs if d.get("kind") == "FlinkDeployment"]
    per_job[0]["metadata"]["name"] = "product-views"
    assert consistency.flink_job_problems([*docs, *per_job]) == [
        "2 FlinkDeployments ['window-jobs', 'product-views']: the window jobs run as one Flink job"
    ]
    spec["job"]["args"].remove("service_error_rate")
    spec["job"]["args"][1] = "stream_processors.product_views"
    assert consistency.flink_job_problems(docs) == [
        f"{where}: runs stream_processors.product_views, not stream_processors.window_jobs",
        f"{where}: runs window jobs ['product_views', 'store_order_revenue', 'route_shipment_delays', "
        "'category_top_products'], the product's are ['product_views', 'store_order_revenue', "
        "'route_shipment_delays', 'service_error_rate', 'category_top_products'] "
        "(missing ['service_error_rate'], unknown [])",
    ]

    docs = copy.deepcopy(rendered["prod"])
    spec, data = flink_parts(docs)
    data["SERVICE_ERROR_RATE_JOB_PARALLELISM"] = "1"
    assert consistency.flink_job_problems(docs) == [
        f"{where}: window jobs run as one Flink job must share parallelism.default: '3' and '1'"
    ]
    data["SERVICE_ERROR_RATE_JOB_PARALLELISM"] = "3"
    spec["job"]["parallelism"] = 2
    spec["flinkConfiguration"]["execution.checkpointing.interval"] = "30s"
    spec["flinkConfiguration"]["state.backend.type"] = "rocksdb"
    spec["taskManager"]["resource"]["memory"] = "2048m"
    assert consistency.flink_job_problems(docs) == [
        f"{where}: state.backend.type is rocksdb, the product's is hashmap",
        f"{where}: taskManager memory 2048m, the product's is 1536m",
    ]
    spec["flinkConfiguration"]["state.backend.type"] = "hashmap"
    spec["taskManager"]["resource"]["memory"] = "1536m"
    assert consistency.flink_job_problems(docs) == [
        f"{where}: execution.checkpointing.interval is 30s, the jobs set 10000 ms",
    ]
    spec["flinkConfiguration"]["execution.checkpointing.interval"] = "10000 ms"
    user = next(d for d in docs if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == "flink-jobs")
    acls = user["spec"]["authorization"]["acls"]
    dropped = ("web.clickstream.v1", "flink-category-top-products")
    acls[:] = [a for a in acls if a["resource"].get("name") not in dropped]
    assert consistency.flink_job_problems(docs) == [
        f"{where}: job.parallelism 2, the jobs' own is 3",
        "flink jobs: KafkaUser flink-jobs may not READ topic web.clickstream.v1 (service_error_rate)",
        "flink jobs: KafkaUser flink-jobs may not READ group flink-category-top-products (category_top_products)",
    ]


def test_compose_running_other_window_jobs_or_settings_than_the_product_is_reported(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    command = broken["services"]["flink-jobs"]["command"]
    command.remove("category_top_products")
    command.append("product_view")
    broken["services"]["flink-jobs"]["environment"]["CATEGORY_TOP_PRODUCTS_JOB_CHECKPOINT_INTERVAL_MS"] = "1000"
    properties = broken["services"]["flink-taskmanager"]["environment"]["FLINK_PROPERTIES"]
    broken["services"]["flink-taskmanager"]["environment"]["FLINK_PROPERTIES"] = properties.replace(
        "taskmanager.memory.process.size: 1536m", "taskmanager.memory.process.size: 4096m"
    )
    assert consistency.compose_flink_problems(broken) == [
        "compose flink-jobs: runs window jobs ['product_views', 'store_order_revenue', 'route_shipment_delays', "
        "'service_error_rate', 'product_view'], the product's are ['product_views', 'store_order_revenue', "
        "'route_shipment_delays', 'service_error_rate', 'category_top_products'] "
        "(missing ['category_top_products'], unknown ['product_view'])",
        "compose flink-taskmanager: taskmanager.memory.process.size is 4096m, the product's is 1536m",
    ]
    command[-1] = "category_top_products"
    assert consistency.compose_flink_problems(broken) == [
        "compose flink-jobs: window jobs run as one Flink job must share execution.checkpointing.interval: "
        "'10000 ms' and '1000 ms'",
        "compose flink-taskmanager: taskmanager.memory.process.size is 4096m, the product's is 1536m",
    ]


def test_the_spark_batch_gets_the_variables_its_settings_need(compose: dict[str, Any]) -> None:
    variables = module_variables("batch_spark.daily_batch")
    text = (ROOT / "deploy/k8s/spark/daily-batch.yaml").read_text()
    application = yaml.safe_load(text.replace("{{ ds }}", "2026-12-01").replace("{{ ds_nodash }}", "20261201"))
    for role in ("driver", "executor"):
        env = consistency.container_env(application["spec"][role]["env"])
        assert consistency.settings_env_problems(variables, env, role, secret_ok=consistency.k8s_secret_ok) == []
    env = compose_environment(compose["services"]["spark"])
    assert consistency.settings_env_problems(variables, env, "compose spark", secret_ok=compose_secret_ok) == []
    assert "SPARK_JOBS_JARS" in env  # no default that works: the jobs refuse an empty jar list
    del env["HDFS_NAMENODE_URI"]
    assert consistency.settings_env_problems(variables, env, "spark", secret_ok=compose_secret_ok) == [
        "spark: HDFS_NAMENODE_URI is not set (HdfsSettings.namenode_uri)"
    ]
    assert unpinned(consistency.images_in(application)) == []


def test_operators_charts_and_the_airflow_image_are_pinned() -> None:
    versions = yaml.safe_load((ROOT / "deploy/k8s/versions.yaml").read_text())
    pinned = [versions["kubernetes"], *versions["operators"].values(), *versions["charts"].values()]
    assert len(pinned) >= 10
    assert [v for v in pinned if not consistency.EXACT_VERSION.fullmatch(str(v))] == []
    assert not consistency.EXACT_VERSION.fullmatch("1.x") and not consistency.EXACT_VERSION.fullmatch("~1.18")
    values = yaml.safe_load((ROOT / "deploy/k8s/airflow/values.yaml").read_text())
    airflow = values["images"]["airflow"]
    assert unpinned([f"{airflow['repository']}:{airflow['tag']}"]) == []
    assert (
        f"--version {versions['charts']['apache-airflow/airflow']}"
        in (ROOT / "deploy/k8s/airflow/values.yaml").read_text()
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_users_read_what_the_services_consume_and_create_no_topics(
    overlay: str, rendered: dict[str, Docs]
) -> None:
    docs = rendered[overlay]
    for service in SERVICES:
        workload = workload_of(docs, service)
        assert workload is not None
        assert consistency.kafka_access_problems(service, docs, k8s_environment(docs, workload)) == []


def test_a_missing_acl_or_a_service_creating_topics_is_reported(rendered: dict[str, Docs]) -> None:
    docs = copy.deepcopy(rendered["prod"])
    service = by_name("sink_hdfs")
    user = next(d for d in docs if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == "sink-hdfs")
    acls = user["spec"]["authorization"]["acls"]
    acls[:] = [a for a in acls if a["resource"].get("name") != "commerce.orders.v1"]
    workload = workload_of(docs, service)
    assert workload is not None
    assert consistency.kafka_access_problems(service, docs, k8s_environment(docs, workload)) == [
        "k8s sink-hdfs: its KafkaUser may not read commerce.orders.v1"
    ]
    enricher = by_name("enricher")
    env = k8s_environment(docs, workload_of(docs, enricher) or {})
    env["ENRICHER_CREATE_TOPICS"] = "true"
    assert consistency.kafka_access_problems(enricher, docs, env) == [
        "k8s enricher: ENRICHER_CREATE_TOPICS is not false (the Topic Operator owns the topics)"
    ]


# ---------------------------------------------------------------- Airflow's metrics: statsd_exporter on Kubernetes

STATSD_MAPPING = (ROOT / "observability" / "statsd" / "mapping.yml").read_text()


def airflow_values() -> dict[str, Any]:
    values = yaml.safe_load((ROOT / "deploy/k8s/airflow/values.yaml").read_text())
    assert isinstance(values, dict)
    return values


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_airflow_sends_its_metrics_to_a_scraped_statsd_exporter(
    overlay: str, compose: dict[str, Any], rendered: dict[str, Docs]
) -> None:
    docs = rendered[overlay]
    assert consistency.statsd_problems(docs, compose, airflow_values(), STATSD_MAPPING) == []
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= {
        ("Deployment", "statsd"),
        ("Service", "statsd"),
        ("ServiceMonitor", "statsd"),
        ("ConfigMap", "statsd-mapping"),
        ("NetworkPolicy", "airflow-to-statsd"),
    }


def test_a_missing_or_miswired_statsd_exporter_is_reported(compose: dict[str, Any], rendered: dict[str, Docs]) -> None:
    docs, values = rendered["prod"], airflow_values()
    for kind, name in (("Deployment", "statsd"), ("Service", "statsd"), ("ServiceMonitor", "statsd")):
        assert f"k8s statsd: no {kind} {name}" in consistency.statsd_problems(
            without(docs, kind, name), compose, values, STATSD_MAPPING
        )
    assert "k8s statsd: no ConfigMap statsd-mapping" in consistency.statsd_problems(
        without(docs, "ConfigMap", "statsd-mapping"), compose, values, STATSD_MAPPING
    )
    assert consistency.statsd_problems(without(docs, "NetworkPolicy", "airflow-to-statsd"), compose, values, "") == [
        "k8s statsd: its mapping ('/etc/statsd/mapping.yml') is not observability/statsd/mapping.yml",
        "k8s statsd: no NetworkPolicy lets Airflow's pods send to it",
    ]
    renamed = copy.deepcopy(docs)
    for doc in renamed:
        if doc["kind"] == "Service" and doc["metadata"]["name"] == "statsd":
            doc["metadata"]["labels"]["app.kubernetes.io/name"] = "statsd-exporter"
            doc["spec"]["ports"] = [p for p in doc["spec"]["ports"] if p["protocol"] != "UDP"]
    assert consistency.statsd_problems(renamed, compose, values, STATSD_MAPPING) == [
        "k8s statsd: the Service does not serve 9125/UDP and 9102/TCP",
        "k8s statsd: the ServiceMonitor does not scrape the Service's metrics port",
        "k8s statsd: the ServiceMonitor's job is not 'statsd' (the alerts' job)",
    ]
    chart = copy.deepcopy(values)
    chart["statsd"]["enabled"] = True
    chart["env"] = [e for e in chart["env"] if e["name"] != "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED"]
    for item in chart["env"]:
        if item["name"] == "AIRFLOW__METRICS__STATSD_HOST":
            item["value"] = "airflow-statsd"
    assert consistency.statsd_problems(docs, compose, chart, STATSD_MAPPING) == [
        "Airflow chart: its own statsd exporter is enabled (it does not use our mapping)",
        "Airflow chart: AIRFLOW__METRICS__STATSD_HOST=airflow-statsd, wanted statsd",
        "Airflow chart: AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED=None, wanted True",
    ]


# ---------------------------------------------------------------- Kafka users: the ACL table; TLS on every hop
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kafka_user_has_exactly_the_rows_of_the_acl_table(overlay: str, rendered: dict[str, Docs]) -> None:
    docs = rendered[overlay]
    assert consistency.kafka_user_problems(docs) == []
    users = {d["metadata"]["name"] for d in docs if d.get("kind") == "KafkaUser"}
    assert {"dlq-reader", "dlq-replay", "flink-jobs", "sink-hdfs", "mirror"} <= users


def test_a_kafka_user_off_the_acl_table_is_reported(rendered: dict[str, Docs]) -> None:
    docs = copy.deepcopy(rendered["prod"])
    user = next(d for d in docs if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == "sink-hdfs")
    acls = user["spec"]["authorization"]["acls"]
    acls[:] = [a for a in acls if a["resource"].get("name") != "commerce.orders.v1.dlq"]  # one row's topic gone
    acls.append({"resource": {"type": "topic", "name": "finance.supplier_invoices.v1"}, "operations": ["Read"]})
    assert consistency.kafka_user_problems(docs) == [
        "k8s KafkaUser sink-hdfs: grants ('topic', 'finance.supplier_invoices.v1', 'literal', 'READ') no row of "
        "sink_hdfs does",
        "k8s KafkaUser sink-hdfs: lacks ('topic', 'commerce.orders.v1.dlq', 'literal', 'DESCRIBE') of its rows",
        "k8s KafkaUser sink-hdfs: lacks ('topic', 'commerce.orders.v1.dlq', 'literal', 'WRITE') of its rows",
    ]
    docs = [d for d in docs if not (d.get("kind") == "KafkaUser" and d["metadata"]["name"] == "dlq-replay")]
    docs.append({**copy.deepcopy(user), "metadata": {"name": "billing"}})
    assert {
        "k8s: no KafkaUser dlq-replay (principal dlq_replay of the ACL table)",
        "k8s: KafkaUser billing is no principal of the ACL table",
    } <= set(consistency.kafka_user_problems(docs))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_hop_on_kubernetes_is_encrypted_and_authenticated(overlay: str, rendered: dict[str, Docs]) -> None:
    docs = rendered[overlay]
    assert consistency.k8s_tls_problems(docs) == []
    checked = {where.split()[1] for where, _, _ in consistency.pods(docs)}
    assert {"schema-registry", "sink-hdfs", "window-jobs", "schema-contracts-0-1-0"} <= checked


def test_a_plaintext_or_unverified_hop_on_kubernetes_is_reported(rendered: dict[str, Docs]) -> None:
    docs = copy.deepcopy(rendered["dev"])
    kafka = next(d for d in docs if d.get("kind") == "Kafka")
    kafka["spec"]["kafka"]["listeners"][0]["tls"] = False
    config = next(d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "sink-gcs-config")
    config["data"]["KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
    config["data"]["SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS"] = "true"
    registry = next(
        d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "schema-registry-config"
    )
    registry["data"]["SCHEMA_REGISTRY_SERVER_DATABASE_DSN"] = "postgresql://freightline@postgres:5432/freightline"
    mirror = workload_of(docs, by_name("mirror"))
    assert mirror is not None
    pod = mirror["spec"]["template"]["spec"]
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] != "kafka-ca"]
    assert sorted(consistency.k8s_tls_problems(docs)) == [
        "Deployment mirror mirror: KAFKA_SSL_CA_LOCATION (/etc/freightline/kafka-ca/ca.crt) is not "
        "freightline-cluster-ca-cert's ca.crt mounted",
        "Deployment schema-registry schema-registry: SCHEMA_REGISTRY_SERVER_DATABASE_DSN is not sslmode=verify-full",
        "Deployment schema-registry schema-registry: the DSN's sslrootcert is not freightline-postgres-ca's mounted",
        "Deployment sink-gcs sink-gcs: Kafka is not SASL_SSL with SCRAM-SHA-512",
        "Deployment sink-gcs sink-gcs: a service may register schemas (SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS)",
        "Kafka freightline: listener tls is not TLS + SCRAM",
    ]


def test_every_compose_kafka_user_has_exactly_the_rows_of_the_acl_table(compose: dict[str, Any]) -> None:
    assert consistency.compose_kafka_user_problems(compose, consistency.COMPOSE_KAFKA_SETUP.read_text()) == []


def test_a_compose_kafka_user_off_the_acl_table_is_reported(compose: dict[str, Any]) -> None:
    setup = consistency.COMPOSE_KAFKA_SETUP.read_text()
    lines = setup.splitlines()
    gcs = next(
        i for i, line in enumerate(lines) if "User:sink-gcs" in line and "finance.supplier_payments.v1.dlq" in line
    )
    lines[gcs] = lines[gcs].replace(" --topic finance.supplier_payments.v1.dlq", "")  # one row's topic gone
    lines.append(
        "acl --allow-principal User:mirror --resource-pattern-type literal --operation Read "
        "--topic finance.supplier_invoices.v1"
    )
    broken = copy.deepcopy(compose)
    broken["services"]["sink-hdfs"]["environment"]["KAFKA_SASL_USERNAME"] = "sink-gcs"
    problems = consistency.compose_kafka_user_problems(broken, "\n".join(lines))
    assert problems == [
        "compose user mirror: grants ('topic', 'finance.supplier_invoices.v1', 'literal', 'READ') no row of "
        "mirror does",
        *(
            f"compose user sink-gcs: lacks ('topic', 'finance.supplier_payments.v1.dlq', 'literal', '{op}') of its rows"
            for op in ("CREATE", "DESCRIBE", "WRITE")
        ),
        "compose sink-hdfs: KAFKA_SASL_USERNAME is not sink-hdfs",
    ]


def test_every_hop_in_compose_is_encrypted_and_authenticated(compose: dict[str, Any]) -> None:
    assert consistency.compose_tls_problems(compose) == []


def test_a_plaintext_or_unverified_hop_in_compose_is_reported(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    services = broken["services"]
    services["kafka"]["environment"]["KAFKA_LISTENERS"] = "CLIENTS://:9092,INTERNAL://:9091,CONTROLLER://127.0.0.1:9093"
    services["sink-gcs"]["environment"]["KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
    services["enricher"]["environment"]["SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS"] = "true"
    services["spark"]["environment"]["POSTGRES_DSN"] = (
        "postgresql://freightline:${POSTGRES_PASSWORD:?x}@postgres:5432/x"
    )
    services["mirror"]["volumes"] = ["tls-authority:/etc/freightline/tls:ro"]
    services["postgres"]["command"] = ["postgres"]
    assert consistency.compose_tls_problems(broken) == [
        "compose kafka: listener INTERNAL://:9091 takes PLAINTEXT off the loopback",
        "compose postgres: ssl is not on",
        "compose enricher: a service is not the registry's read-only user without auto-registration",
        "compose mirror: does not mount tls-ca read-only at /etc/freightline/tls",
        "compose mirror: mounts the CA's key",
        "compose sink-gcs: Kafka is ('SASL_PLAINTEXT', 'SCRAM-SHA-512', '/etc/freightline/tls/ca.crt'), not "
        "('SASL_SSL', 'SCRAM-SHA-512', '/etc/freightline/tls/ca.crt')",
        "compose spark: POSTGRES_DSN is not sslmode=verify-full against the CA",
    ]


def test_the_contracts_step_gets_every_setting_it_reads(compose: dict[str, Any], rendered: dict[str, Docs]) -> None:
    """The registration step (``python -m services.schema_registry.contracts``) in compose and in the Kubernetes
    Job: every variable its settings need, nothing it does not read, its secrets by reference."""
    variables = module_variables(CONTRACTS_MODULE)
    env = compose_environment(compose["services"]["schema-contracts"])
    assert settings_env_problems(variables, env, "compose", secret_ok=compose_secret_ok) == []
    job = next(d for d in rendered["prod"] if d.get("kind") == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == CONTRACTS_MODULE
    env = consistency.container_environment(rendered["prod"], container)
    assert settings_env_problems(variables, env, "k8s", secret_ok=k8s_secret_ok) == []
    assert settings_env_problems(variables, {}, "k8s", secret_ok=k8s_secret_ok) == [
        "k8s: SCHEMA_REGISTRY_URL is not set (SchemaRegistrySettings.url)"
    ]
