"""Freightline's Grafana dashboards: the platform overview, one per service family, and the business windows.

Every metric a query names is in ``observability/METRICS.md`` (a test checks it), every PromQL query returns live
data against the stack's Prometheus while the services run (``tests/integration/observability/test_dashboards.py``).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard

from observability.dashboards.panels import (
    RATE,
    SLO_SECONDS,
    SLO_TARGET,
    Sql,
    graph,
    label_variable,
    new_dashboard,
    prom,
    rate_graph,
    single,
    sql_graph,
    sql_table,
    thresholds,
)

SINKS = ("sink_mongodb", "sink_hdfs", "sink_gcs")
SLO_LINE = thresholds((SLO_SECONDS, "red"))
LAG_LIMITS = thresholds((1000, "yellow"), (100_000, "red"))
COMMIT_AGE_LIMITS = thresholds((60, "yellow"), (300, "red"))  # the NoCommit alert: 5 minutes
ANY_IS_BAD = thresholds((1e-9, "red"))
JOB = '{job_name=~"$job_name"}'  # the Flink job variable's selector


def _quantiles(metric: str, selector: str, by: str = "") -> list[prometheus.Dataquery]:
    """p50, p95 and p99 of a histogram over Grafana's rate window."""
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        prom(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"{prefix}p{int(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]


def _stage_rows(board: dashboard.Dashboard, service: str, topics: str = "$topic") -> dashboard.Dashboard:
    """What every consuming service shows: throughput, lag, commits, latency and dead letters of ``service``."""
    s = f'service="{service}", topic=~"{topics}"'
    return (
        board.with_row(dashboard.Row("Throughput and lag"))
        .with_panel(
            rate_graph(
                "Records consumed per topic and outcome",
                "freightline_records_consumed_total",
                ("topic", "outcome"),
                selector=s,
                description="Records taken from each input topic per second: ok, dead_lettered or retried.",
            )
        )
        .with_panel(
            graph(
                "Consumer lag per group and partition",
                "short",
                prom(
                    f"sum by (group, topic, partition) (freightline_consumer_lag_records{{{s}}})",
                    "{{group}} {{topic}}[{{partition}}]",
                ),
                description="High watermark minus committed position (refreshed every 10 s by the service).",
                limits=LAG_LIMITS,
            )
        )
        .with_panel(
            rate_graph(
                "Offset commits per second",
                "freightline_offset_commits_total",
                ("outcome",),
                selector=f'service="{service}"',
                width=8,
            )
        )
        .with_panel(
            graph(
                "Age of the last commit",
                "s",
                prom(
                    f'time() - max by (group) (freightline_last_commit_timestamp_seconds{{service="{service}"}})',
                    "{{group}}",
                ),
                description="Seconds since each consumer group's last successful commit (alert: 5 min with lag).",
                limits=COMMIT_AGE_LIMITS,
                width=8,
            )
        )
        .with_panel(
            graph(
                "Batch processing latency (consumed to committed)",
                "s",
                *_quantiles("freightline_processing_latency_seconds", s),
                width=8,
            )
        )
        .with_row(dashboard.Row("End-to-end latency"))
        .with_panel(
            graph(
                "Ingest time to processed",
                "s",
                *_quantiles("freightline_ingest_age_seconds", s),
                description="From the Kafka record's timestamp to the batch's outputs being durable.",
                limits=SLO_LINE,
            )
        )
        .with_panel(
            rate_graph(
                "Dead letters per topic and error type",
                "freightline_dead_letters_total",
                ("topic", "error_type"),
                selector=f'service="{service}"',
                limits=ANY_IS_BAD,
            )
        )
    )


def overview() -> Dashboard:
    s = 'service=~"$service", topic=~"$topic"'
    board = (
        new_dashboard(
            "freightline-overview",
            "Freightline / Platform overview",
            "Throughput and lag per stage, end-to-end latency against the SLO (p99 <= 100 ms), dead letters.",
            ["overview"],
        )
        .with_variable(label_variable("service", "service", "freightline_records_consumed_total"))
        .with_variable(label_variable("topic", "topic", 'freightline_records_consumed_total{service=~"$service"}'))
        .with_row(dashboard.Row("Service level"))
        .with_panel(
            single(
                "Events within 100 ms of their event time (5 min)",
                "percentunit",
                prom(
                    f'sum(rate(freightline_event_age_seconds_bucket{{{s}, le="{SLO_SECONDS}"}}[5m]))'
                    f" / sum(rate(freightline_event_age_seconds_count{{{s}}}[5m]))"
                ),
                description="The latency SLO: 99% of events processed within 100 ms of their event time.",
                limits=thresholds((0.95, "yellow"), (SLO_TARGET, "green"), base="red"),
            )
        )
        .with_panel(
            single(
                "Dead letters (window)",
                "short",
                prom(f"sum(increase(freightline_dead_letters_total{{{s}}}[$__range]))"),
                limits=ANY_IS_BAD,
            )
        )
        .with_panel(
            single(
                "Consumer lag (records)",
                "short",
                prom(f"sum(freightline_consumer_lag_records{{{s}}})"),
                limits=LAG_LIMITS,
            )
        )
        .with_panel(
            single(
                "Targets up",
                "percentunit",
                prom("avg(up)"),
                description="Share of Prometheus's targets (services, registry) answering their scrape.",
                limits=thresholds((0.99, "green"), base="red"),
            )
        )
        .with_row(dashboard.Row("Throughput and lag per stage"))
        .with_panel(
            rate_graph("Records consumed per service", "freightline_records_consumed_total", ("service",), selector=s)
        )
        .with_panel(
            rate_graph("Records produced per service", "freightline_records_produced_total", ("service",), selector=s)
        )
        .with_panel(
            graph(
                "Consumer lag per service and topic",
                "short",
                prom(
                    f"sum by (service, topic) (freightline_consumer_lag_records{{{s}}})",
                    "{{service}} {{topic}}",
                ),
                limits=LAG_LIMITS,
            )
        )
        .with_panel(
            graph(
                "Age of the last commit per service",
                "s",
                prom(
                    'time() - max by (service) (freightline_last_commit_timestamp_seconds{service=~"$service"})',
                    "{{service}}",
                ),
                limits=COMMIT_AGE_LIMITS,
            )
        )
        .with_row(dashboard.Row("End-to-end latency"))
        .with_panel(
            graph(
                "Event time to processed (p50, p95, p99) against the 100 ms SLO",
                "s",
                *_quantiles("freightline_event_age_seconds", s),
                description="Freshness of what the services processed, from the event's own time.",
                limits=SLO_LINE,
            )
        )
        .with_panel(
            graph(
                "Ingest time to processed, p99 per service",
                "s",
                prom(
                    "histogram_quantile(0.99, sum by (le, service) "
                    f"(rate(freightline_ingest_age_seconds_bucket{{{s}}}[{RATE}])))",
                    "{{service}}",
                ),
                description="From the Kafka record's timestamp to the batch's outputs being durable.",
                limits=SLO_LINE,
            )
        )
        .with_row(dashboard.Row("Dead letters"))
        .with_panel(
            rate_graph(
                "Dead letters per service, topic and error type",
                "freightline_dead_letters_total",
                ("service", "topic", "error_type"),
                selector=s,
                limits=ANY_IS_BAD,
                width=24,
            )
        )
    )
    return _airflow_rows(board).build()


def _airflow_rows(board: dashboard.Dashboard) -> dashboard.Dashboard:
    """The batch side: Airflow's StatsD metrics through the stack's statsd_exporter (``observability/statsd``)."""
    failed_runs = 'airflow_dagrun_duration_seconds_count{state="failed"}'
    stats = (  # title, PromQL, description, thresholds; all in counts
        (
            "Scheduler heartbeats per minute",
            f"sum(rate(airflow_scheduler_heartbeats_total[{RATE}])) * 60",
            "Airflow's scheduler loop beats every 5 s; none for 3 minutes pages "
            "(FreightlineAirflowSchedulerHeartbeatMissing).",
            thresholds((1, "green"), base="red"),
        ),
        (
            "Executor open slots",
            "sum(airflow_executor_open_slots)",
            "Free task slots of the LocalExecutor: 0 while tasks wait for one.",
            thresholds((1, "green"), base="yellow"),
        ),
        (
            "Failed DAG runs (window)",
            f"sum(increase({failed_runs}[$__range]))",
            "DAG runs that ended failed (FreightlineAirflowDagRunFailed).",
            ANY_IS_BAD,
        ),
        (
            "Failed tasks (window)",
            "sum(increase(airflow_task_failures_total[$__range]))",
            "Task instances that failed, retries included.",
            ANY_IS_BAD,
        ),
    )
    board = board.with_row(dashboard.Row("Batch (Airflow)"))
    for title, expr, description, limits in stats:
        board = board.with_panel(single(title, "short", prom(expr), description=description, limits=limits))
    return (
        board.with_panel(
            graph(
                "DAG run duration p95 per DAG and state (window)",
                "s",
                prom(
                    "histogram_quantile(0.95, sum by (dag_id, state, le) "
                    "(increase(airflow_dagrun_duration_seconds_bucket[$__range])))",
                    "{{dag_id}} {{state}}",
                ),
                description="From a DAG run's start to its end; runs are rare, so over the dashboard's window.",
            )
        )
        .with_panel(
            graph(
                "Executor slots and tasks",
                "short",
                prom("sum(airflow_executor_open_slots)", "open slots"),
                prom("sum(airflow_executor_running_tasks)", "running", "B"),
                prom("sum(airflow_executor_queued_tasks)", "queued", "C"),
            )
        )
        .with_panel(
            rate_graph(
                "Task failures per DAG and task",
                "airflow_task_failures_total",
                ("dag_id", "task_id"),
                limits=ANY_IS_BAD,
                width=24,
            )
        )
    )


def _family(uid: str, title: str, service: str, description: str) -> dashboard.Dashboard:
    return new_dashboard(uid, f"Freightline / {title}", description, [service]).with_variable(
        label_variable("topic", "topic", f'freightline_records_consumed_total{{service="{service}"}}')
    )


def mirror() -> Dashboard:
    board = (
        _family("freightline-mirror", "Mirror", "mirror", "Remote cluster to local: records, bytes, source health.")
        .with_row(dashboard.Row("Copy"))
        .with_panel(
            rate_graph(
                "Records copied per source and destination topic",
                "freightline_mirror_records_total",
                ("source_topic", "destination_topic"),
            )
        )
        .with_panel(rate_graph("Bytes copied", "freightline_mirror_bytes_total", (), unit="Bps"))
        .with_panel(
            single(
                "Remote cluster connected",
                "bool_yes_no",
                prom("min(freightline_mirror_source_up)"),
                limits=thresholds((1, "green"), base="red"),
            )
        )
        .with_panel(
            single(
                "Since the last poll of the remote cluster",
                "s",
                prom("time() - max(freightline_mirror_last_poll_timestamp_seconds)"),
                limits=thresholds((30, "yellow"), (120, "red")),
            )
        )
        .with_panel(
            single(
                "Authentication failures (window)",
                "short",
                prom("sum(increase(freightline_mirror_source_auth_failures_total[$__range]))"),
                limits=ANY_IS_BAD,
            )
        )
        .with_panel(
            single(
                "Schemas registered (window)",
                "short",
                prom("sum(increase(freightline_mirror_schema_registrations_total[$__range]))"),
                limits=thresholds(base="blue"),
            )
        )
    )
    return _stage_rows(board, "mirror").build()


def enricher() -> Dashboard:
    board = (
        _family("freightline-enricher", "Enricher", "enricher", "Joins with the reference tables, UNKNOWN markers.")
        .with_row(dashboard.Row("Enrichment"))
        .with_panel(rate_graph("Enriched records per output topic", "freightline_enricher_enriched_total", ("topic",)))
        .with_panel(
            graph(
                "Unknown references per enriched record, by kind",
                "percentunit",
                prom(
                    f"sum by (kind) (rate(freightline_enricher_unknown_references_total[{RATE}]))"
                    f" / scalar(sum(rate(freightline_enricher_enriched_total[{RATE}])))",
                    "{{kind}}",
                ),
                description="References missing from the reference data (emitted as UNKNOWN) per record enriched.",
                limits=thresholds((0.01, "yellow"), (0.1, "red")),
            )
        )
        .with_panel(
            graph(
                "Event time to enriched (p50, p95, p99)",
                "s",
                *_quantiles("freightline_enricher_event_to_enriched_seconds", 'topic=~".*"'),
                limits=SLO_LINE,
            )
        )
        .with_panel(
            graph(
                "Records per batch (p50, p99)",
                "short",
                *_quantiles("freightline_enricher_batch_records", "")[::2],
            )
        )
        .with_panel(
            graph(
                "Reference table entries",
                "short",
                prom("sum by (kind) (freightline_enricher_reference_entries)", "{{kind}}"),
            )
        )
        .with_panel(rate_graph("Geo lookups per country", "freightline_enricher_geo_lookups_total", ("country",)))
    )
    return _stage_rows(board, "enricher").build()


def detector() -> Dashboard:
    board = (
        _family("freightline-detector", "Anomaly detector", "anomaly_detector", "Windowed detection per key.")
        .with_row(dashboard.Row("Detection"))
        .with_panel(
            graph(
                "Anomalies per type",
                "short",
                prom(
                    f"sum by (type) (increase(freightline_anomaly_detector_anomalies_total[{RATE}]))",
                    "{{type}}",
                ),
                stack=True,
            )
        )
        .with_panel(
            rate_graph(
                "Events fed to the detectors per raw topic", "freightline_anomaly_detector_events_total", ("topic",)
            )
        )
    )
    return _stage_rows(board, "anomaly_detector").build()


def sinks() -> Dashboard:
    board = new_dashboard(
        "freightline-sinks",
        "Freightline / Sinks",
        "MongoDB, HDFS and GCS sinks: durable writes, their latency and size, the targets' health.",
        ["sinks"],
    ).with_variable(label_variable("service", "sink", 'freightline_records_consumed_total{service=~"sink_.*"}'))
    board = board.with_variable(
        label_variable("topic", "topic", 'freightline_records_consumed_total{service=~"$service"}')
    )
    s = 'service=~"$service", topic=~"$topic"'
    board = (
        board.with_row(dashboard.Row("All sinks"))
        .with_panel(
            rate_graph(
                "Records consumed per sink and outcome",
                "freightline_records_consumed_total",
                ("service", "outcome"),
                selector=s,
            )
        )
        .with_panel(
            graph(
                "Consumer lag per sink and partition",
                "short",
                prom(
                    f"sum by (service, topic, partition) (freightline_consumer_lag_records{{{s}}})",
                    "{{service}} {{topic}}[{{partition}}]",
                ),
                limits=LAG_LIMITS,
            )
        )
        .with_panel(
            graph(
                "Event time to written, p99 per sink",
                "s",
                prom(
                    "histogram_quantile(0.99, sum by (le, service) "
                    f"(rate(freightline_event_age_seconds_bucket{{{s}}}[{RATE}])))",
                    "{{service}}",
                ),
                limits=SLO_LINE,
            )
        )
        .with_panel(
            graph(
                "Age of the last commit per sink",
                "s",
                prom(
                    'time() - max by (service) (freightline_last_commit_timestamp_seconds{service=~"$service"})',
                    "{{service}}",
                ),
                limits=COMMIT_AGE_LIMITS,
            )
        )
    )
    for sink in SINKS:
        prefix = f"freightline_{sink}"
        board = (
            board.with_row(dashboard.Row(sink))
            .with_panel(
                single(
                    f"{sink}: target up",
                    "bool_yes_no",
                    prom(f"min({prefix}_target_up)"),
                    limits=thresholds((1, "green"), base="red"),
                    width=4,
                )
            )
            .with_panel(
                rate_graph(
                    f"{sink}: records written per topic", f"{prefix}_records_written_total", ("topic",), width=10
                )
            )
            .with_panel(rate_graph(f"{sink}: bytes written", f"{prefix}_bytes_written_total", (), unit="Bps", width=10))
            .with_panel(
                graph(f"{sink}: write latency", "s", *_quantiles(f"{prefix}_write_latency_seconds", ""), width=8)
            )
            .with_panel(
                graph(f"{sink}: records per write", "short", *_quantiles(f"{prefix}_write_batch_records", ""), width=8)
            )
            .with_panel(
                rate_graph(
                    f"{sink}: files, objects or bulk writes committed",
                    f"{prefix}_files_committed_total",
                    ("topic",),
                    width=8,
                )
            )
        )
    return board.build()


def registry() -> Dashboard:
    board = (
        new_dashboard(
            "freightline-registry",
            "Freightline / Schema Registry",
            "Requests by route and status, latency, server errors, registrations.",
            ["schema_registry"],
        )
        .with_row(dashboard.Row("Requests"))
        .with_panel(
            rate_graph(
                "Requests per route and status",
                "freightline_schema_registry_requests_total",
                ("route", "status"),
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "Server errors (5xx) per request",
                "percentunit",
                prom(
                    "1 - sum(rate(freightline_schema_registry_requests_total{status=~\"[1-4]..\"}"
                    f"[{RATE}])) / sum(rate(freightline_schema_registry_requests_total[{RATE}]))",
                    "5xx share",
                ),
                description="Share of requests answered with a 5xx (alert: any 5xx in 5 minutes).",
                limits=ANY_IS_BAD,
            )
        )
        .with_panel(
            graph(
                "Latency per route (p99)",
                "s",
                prom(
                    "histogram_quantile(0.99, sum by (le, route) "
                    f"(rate(freightline_schema_registry_request_duration_seconds_bucket[{RATE}])))",
                    "{{route}}",
                ),
                limits=thresholds((0.05, "yellow"), (0.25, "red")),
            )
        )
        .with_panel(
            rate_graph(
                "Schema id lookups answered from memory",
                "freightline_schema_registry_id_cache_hits_total",
                (),
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "Subject versions registered",
                "short",
                prom(
                    f"sum by (new_schema) (increase(freightline_schema_registry_schemas_registered_total[{RATE}]))",
                    "new schema: {{new_schema}}",
                ),
            )
        )
        .with_panel(single("Registry up", "bool_yes_no", prom('min(up{job="schema_registry"})'),
                           limits=thresholds((1, "green"), base="red")))
    )  # fmt: skip
    return board.build()


def flink() -> Dashboard:
    """The Flink session cluster and its jobs (Flink's Prometheus reporter: jobs ``flink_jobmanager`` and
    ``flink_taskmanager``, Flink's labels ``job_name`` and ``task_name``)."""
    board = (
        new_dashboard(
            "freightline-flink",
            "Freightline / Flink jobs",
            "The window jobs on the Flink session cluster: records in and out, checkpoints, restarts, watermark lag.",
            ["flink"],
        )
        .with_variable(label_variable("job_name", "job_name", "flink_jobmanager_job_runningTime"))
        .with_row(dashboard.Row("Cluster"))
        .with_panel(single("Jobs running", "short", prom("sum(flink_jobmanager_numRunningJobs)"),
                           limits=thresholds((1, "green"), base="red")))
        .with_panel(single("Task slots free", "short", prom("sum(flink_jobmanager_taskSlotsAvailable)"),
                           limits=thresholds((1, "green"), base="yellow")))
        .with_panel(single("Task slots", "short", prom("sum(flink_jobmanager_taskSlotsTotal)"),
                           limits=thresholds((1, "green"), base="red")))
        .with_panel(single("Restarts (all jobs)", "short",
                           prom(f'sum(flink_jobmanager_job_numRestarts{JOB})'),
                           limits=thresholds((1, "yellow"), (10, "red"))))
        .with_row(dashboard.Row("Records"))
        .with_panel(rate_graph("Records in per job", "flink_taskmanager_job_task_numRecordsIn", ("job_name",),
                               selector='job_name=~"$job_name"', unit="rps"))
        .with_panel(rate_graph("Records out per job", "flink_taskmanager_job_task_numRecordsOut", ("job_name",),
                               selector='job_name=~"$job_name"', unit="rps"))
        .with_panel(
            graph(
                "Busy and back-pressured time per task",
                "ms",
                prom(f'max by (job_name, task_name) (flink_taskmanager_job_task_busyTimeMsPerSecond{JOB})',
                     "busy {{job_name}} {{task_name}}"),
                prom("max by (job_name, task_name) "
                     f'(flink_taskmanager_job_task_backPressuredTimeMsPerSecond{JOB})',
                     "back-pressured {{job_name}} {{task_name}}", "B"),
                description="Milliseconds per second each task was busy or waiting on back pressure (1000 = always).",
                limits=thresholds((500, "yellow"), (900, "red")),
            )
        )
        .with_panel(
            graph(
                "Watermark lag per job",
                "ms",
                prom("time() * 1000 - max by (job_name) "
                     f'(flink_taskmanager_job_task_operator_currentOutputWatermark{JOB} > 0)',
                     "{{job_name}}"),
                description="How far each job's event-time watermark is behind the wall clock (an unpaced backlog "
                "of old events shows as a large lag, as it should).",
                limits=thresholds((60_000, "yellow"), (600_000, "red")),
            )
        )
        .with_row(dashboard.Row("Checkpoints and restarts"))
        .with_panel(
            graph(
                "Checkpoints completed and failed",
                "short",
                prom(f"sum by (job_name) (increase(flink_jobmanager_job_numberOfCompletedCheckpoints{JOB}[{RATE}]))",
                     "completed {{job_name}}"),
                prom(f"sum by (job_name) (increase(flink_jobmanager_job_numberOfFailedCheckpoints{JOB}[{RATE}]))",
                     "failed {{job_name}}", "B"),
                description="Per minute (alert: any failed checkpoint in 10 minutes).",
            )
        )
        .with_panel(
            graph(
                "Age of the last completed checkpoint",
                "s",
                prom("time() - max by (job_name) "
                     f"(flink_jobmanager_job_lastCheckpointCompletedTimestamp{JOB} > 0) / 1000",
                     "{{job_name}}"),
                description="Alert: older than 5 minutes while the job has run longer (its Kafka output waits).",
                limits=thresholds((60, "yellow"), (300, "red")),
            )
        )
        .with_panel(
            graph(
                "Last checkpoint duration",
                "ms",
                prom(f'max by (job_name) (flink_jobmanager_job_lastCheckpointDuration{JOB})',
                     "{{job_name}}"),
            )
        )
        .with_panel(
            graph(
                "Restarts per job",
                "short",
                prom(f'max by (job_name) (flink_jobmanager_job_numRestarts{JOB})', "{{job_name}}"),
                description="Restarts since the job was submitted (the cluster restarts a failing job with "
                "exponential delay).",
                limits=thresholds((1, "yellow"), (10, "red")),
            )
        )
    )  # fmt: skip
    return board.build()


# The tables the Flink window jobs upsert (primary key window + key; columns as their Avro contracts in
# schemas/avro/com/freightline/aggregates/: ProductViewsWindow, StoreOrderRevenueWindow, RouteShipmentDelaysWindow).
PRODUCT_VIEWS = "streaming.product_views_1m"
STORE_REVENUE = "streaming.store_order_revenue_5m"
ROUTE_DELAYS = "streaming.route_shipment_delays_5m"
# Each table's contract: the Avro record whose fields (without the metadata envelope) are its columns.
BUSINESS_TABLES = {
    PRODUCT_VIEWS: "com/freightline/aggregates/ProductViewsWindow.avsc",
    STORE_REVENUE: "com/freightline/aggregates/StoreOrderRevenueWindow.avsc",
    ROUTE_DELAYS: "com/freightline/aggregates/RouteShipmentDelaysWindow.avsc",
}


def business() -> Dashboard:
    board = (
        new_dashboard(
            "freightline-business",
            "Freightline / Business windows",
            "The stream processors' windows in PostgreSQL: views per product, revenue per store, delayed shipments.",
            ["business"],
        )
        .time("now-6h", "now")
        .with_row(dashboard.Row("Product views (1-minute windows)"))
        .with_panel(
            sql_graph(
                "Product views per minute",
                "short",
                Sql(
                    "SELECT window_start AS time, sum(view_count) AS views, sum(unique_visitors) AS visitors\n"
                    f"FROM {PRODUCT_VIEWS}\nWHERE $__timeFilter(window_start)\nGROUP BY 1\nORDER BY 1"
                ),
            )
        )
        .with_panel(
            sql_table(
                "Most viewed products",
                Sql(
                    "SELECT product_id, sum(view_count) AS views, sum(unique_visitors) AS visitors,\n"
                    f"  max(last_view_time) AS last_view\nFROM {PRODUCT_VIEWS}\n"
                    "WHERE $__timeFilter(window_start)\nGROUP BY product_id\nORDER BY views DESC\nLIMIT 20",
                    fmt="table",
                ),
            )
        )
        .with_row(dashboard.Row("Revenue (5-minute windows)"))
        .with_panel(
            sql_graph(
                "Revenue per store and currency",
                "short",
                Sql(
                    "SELECT window_start AS time, store_id || ' ' || currency AS metric, sum(revenue) AS revenue\n"
                    f"FROM {STORE_REVENUE}\nWHERE $__timeFilter(window_start)\nGROUP BY 1, 2\nORDER BY 1"
                ),
                description="Sums of order_total per store, in each store's currency (never converted here).",
            )
        )
        .with_panel(
            sql_table(
                "Revenue and orders per store (time range)",
                Sql(
                    "SELECT store_id, currency, sum(revenue) AS revenue, sum(order_count) AS orders,\n"
                    f"  sum(item_count) AS items\nFROM {STORE_REVENUE}\nWHERE $__timeFilter(window_start)\n"
                    "GROUP BY store_id, currency\nORDER BY revenue DESC",
                    fmt="table",
                ),
            )
        )
        .with_row(dashboard.Row("Delayed shipments (5-minute windows)"))
        .with_panel(
            sql_graph(
                "Delayed shipments per route",
                "short",
                Sql(
                    "SELECT window_start AS time, route_id AS metric, sum(delayed_shipment_count) AS delayed\n"
                    f"FROM {ROUTE_DELAYS}\nWHERE $__timeFilter(window_start)\nGROUP BY 1, 2\nORDER BY 1"
                ),
            )
        )
        .with_panel(
            sql_table(
                "Routes by delay rate (time range)",
                Sql(
                    "SELECT route_id, sum(delayed_shipment_count) AS delayed, sum(shipment_count) AS shipments,\n"
                    "  sum(delayed_shipment_count)::float / nullif(sum(shipment_count), 0) AS delay_rate\n"
                    f"FROM {ROUTE_DELAYS}\nWHERE $__timeFilter(window_start)\nGROUP BY route_id\n"
                    "ORDER BY delay_rate DESC NULLS LAST\nLIMIT 20",
                    fmt="table",
                ),
            )
        )
    )
    return board.build()


DASHBOARDS = {
    "overview": overview,
    "mirror": mirror,
    "enricher": enricher,
    "anomaly_detector": detector,
    "sinks": sinks,
    "schema_registry": registry,
    "flink": flink,
    "business": business,
}
