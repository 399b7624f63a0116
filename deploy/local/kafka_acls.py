"""Who may do what on the local stack's brokers when ``FREIGHTLINE_SECURE`` is on: one Kafka principal per service,
least privilege, in one table derived from the topic catalogue (``schemas.topics``) and the services' settings
(their default input, output and dead-letter topics, consumer groups and transactional ids).

The brokers run KRaft's ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``: a principal may do
only what a row grants it. ``admin`` (the stack's own tools and tests) is the super user and needs no row. The
broker creates the rows of its cluster at every start (``apply``), removing what a row no longer grants.

A row's topics are literal names; a prefix (``Access.prefixes``) grants a family of names a service makes up at run
time (the enricher's Faust topics, a window job's transactional ids, the replay tool's throw-away groups).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.common.sinks.settings import SinkSettings

ADMIN = "admin"
"""The super user (``super.users``): the stack's own tools, the ACL set-up, the tests."""
BROKER = "broker"
"""The brokers' own identity on the inter-broker listener (a super user too: it writes transaction markers)."""
LOCAL = "local"
REMOTE = "remote"
CLUSTERS = (LOCAL, REMOTE)

MIRROR = "mirror"
GENERATOR = "generator"
ENRICHER = "enricher"
ANOMALY_DETECTOR = "anomaly_detector"
STREAM = "stream"
BATCH = "batch"
"""The batch's tasks (Airflow's ``daily_analytics``, ``dbt_build``): the reference load and the reconciliation."""
DLQ_READER = "dlq_reader"
"""``freightline dlq list|show``: reads the dead-letter topics and their replay ledgers, writes nothing."""
DLQ_REPLAY = "dlq_replay"
"""``freightline dlq replay``: reads them too, writes the replayed records and the ledgers in transactions."""
DLQ_READER_GROUP_PREFIX = "freightline-dlq-"
"""The throw-away consumer groups of ``freightline dlq`` (``services.common.dlq.read_messages``)."""
DLQ_REPLAY_TRANSACTIONAL_PREFIX = "freightline-dlq-replay-"


@dataclass(frozen=True)
class Access:
    """One principal's grants on one cluster."""

    service: str
    principal: str
    cluster: str
    reads: tuple[str, ...] = ()
    """Topics it consumes (Read, Describe)."""
    read_configs: bool = False
    """Whether it reads the configuration of the topics it consumes (DescribeConfigs: the mirror copies it)."""
    writes: tuple[str, ...] = ()
    """Topics it produces to: outputs and dead-letter topics (Write, Describe, Create: services create them)."""
    groups: tuple[str, ...] = ()
    """Consumer groups (Read, Describe)."""
    transactional_ids: tuple[str, ...] = ()
    """Transactional id prefixes (Write, Describe)."""
    prefixes: Mapping[str, str] = field(default_factory=dict)
    """Resource type (``topic`` or ``group``) -> a name prefix it may create and use in full."""


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _dlqs(sources: Iterable[str]) -> tuple[str, ...]:
    from services.common.deadletter import dead_letter_topic

    return tuple(dead_letter_topic(source) for source in sources)


def _sink(service: str, settings: SinkSettings) -> Access:
    sources = tuple(settings.topic_list())
    return Access(service, service, LOCAL, reads=sources, writes=_dlqs(sources), groups=(settings.group_id,))


def access_table() -> tuple[Access, ...]:
    """Every principal's grants, from the services' default settings (``model_construct``: no environment read).
    The services' modules are imported here, not with this module: the stack's start needs them only when secure."""
    from batch_spark.load_reference import ENTITIES as REFERENCE_ENTITIES
    from batch_spark.load_reference import GROUP_ID_PREFIX as REFERENCE_GROUP_PREFIX
    from schemas import topics
    from schemas.catalogue import load_catalogue
    from services.anomaly_detector.settings import INPUT_TOPICS as DETECTOR_INPUTS
    from services.anomaly_detector.settings import DetectorSettings
    from services.common.deadletter import dead_letter_topic
    from services.common.dlq import replay_ledger_topic
    from services.enricher.settings import OUTPUT_TOPICS as ENRICHER_OUTPUTS
    from services.enricher.settings import REFERENCE_TOPICS as ENRICHER_REFERENCES
    from services.enricher.settings import SOURCE_TOPICS as ENRICHER_SOURCES
    from services.enricher.settings import EnricherSettings
    from services.generator.records import ALL_TOPICS as GENERATOR_TOPICS
    from services.generator.settings import GeneratorSettings
    from services.mirror.settings import MirrorSettings
    from services.sink_gcs.settings import SERVICE as SINK_GCS
    from services.sink_gcs.settings import GcsSinkSettings
    from services.sink_hdfs.settings import SERVICE as SINK_HDFS
    from services.sink_hdfs.settings import HdfsSinkSettings
    from services.sink_mongodb.settings import SERVICE as SINK_MONGODB
    from services.sink_mongodb.settings import MongoSinkSettings
    from stream_processors.window_jobs import JOBS as WINDOW_JOBS

    catalogue = load_catalogue()
    generator = GeneratorSettings.model_construct()
    generated: dict[str, list[str]] = {LOCAL: [], REMOTE: []}
    for name in GENERATOR_TOPICS:
        generated[catalogue.topic(name).cluster].append(generator.topic(name))

    mirror = MirrorSettings.model_construct()
    mirror_sources = tuple(mirror.source_topics())
    mirror_outputs = tuple(mirror.destination(topic) for topic in mirror_sources)

    enricher = EnricherSettings.model_construct()
    enricher_sources = tuple(enricher.source(kind) for kind in ENRICHER_SOURCES)
    enricher_references = tuple(enricher.reference(kind) for kind in ENRICHER_REFERENCES)
    enricher_outputs = tuple(enricher.output(kind) for kind in ENRICHER_OUTPUTS)

    detector = DetectorSettings.model_construct()
    detector_inputs = tuple(detector.topic(name) for name in DETECTOR_INPUTS)
    repartition = detector.topic(topics.DETECTOR_INPUT)
    detector_reads = (*detector_inputs, repartition)

    jobs = [settings.model_construct() for _, settings in WINDOW_JOBS.values()]

    table = [
        Access(GENERATOR, GENERATOR, LOCAL, writes=tuple(generated[LOCAL])),
        Access(GENERATOR, GENERATOR, REMOTE, writes=tuple(generated[REMOTE])),
        # the mirror creates each destination like its source: it reads the source's configuration
        Access(MIRROR, MIRROR, REMOTE, reads=mirror_sources, read_configs=True, groups=(mirror.group_id,)),
        Access(
            MIRROR,
            MIRROR,
            LOCAL,
            # the source positions: written in each copy's transaction, read back at partition assignment
            reads=(mirror.offsets_topic,),
            writes=(*mirror_outputs, mirror.offsets_topic, *_dlqs(mirror_sources)),
            # its transactional id is <instance id>-<group>, the instance id <service>-<host> by default
            transactional_ids=(f"{MIRROR}-",),
        ),
        Access(
            ENRICHER,
            ENRICHER,
            LOCAL,
            reads=(*enricher_sources, *enricher_references),
            writes=(*enricher_outputs, *_dlqs(enricher_sources)),
            groups=(enricher.app_id,),
            prefixes={"topic": f"{enricher.app_id}-", "group": f"{enricher.app_id}-"},  # Faust's own topics
        ),
        Access(
            ANOMALY_DETECTOR,
            ANOMALY_DETECTOR,
            LOCAL,
            reads=detector_reads,
            writes=(repartition, detector.topic(topics.ANOMALIES), *_dlqs(detector_reads)),
            groups=(detector.group_id, detector.repartition_group_id),
        ),
        _sink(SINK_MONGODB, MongoSinkSettings.model_construct()),
        _sink(SINK_HDFS, HdfsSinkSettings.model_construct()),
        _sink(SINK_GCS, GcsSinkSettings.model_construct()),
        Access(
            STREAM,
            STREAM,
            LOCAL,
            reads=_unique(job.source_topic for job in jobs),
            writes=_unique([*(job.sink_topic for job in jobs), *(job.late_topic for job in jobs)]),
            groups=tuple(job.group_id for job in jobs),
            # each sink's transactional ids start with the job's prefix (flink_sql.kafka_sink)
            transactional_ids=tuple(f"{job.transactional_id_prefix or job.group_id}-" for job in jobs),
        ),
        # the reference load (Spark's Kafka source: one throw-away group per read, its prefix, offsets never
        # committed) and the reconciliation, which reads the window jobs' late events (assigned, no group)
        Access(
            BATCH,
            BATCH,
            LOCAL,
            reads=(*(entity.topic for entity in REFERENCE_ENTITIES), *_unique(job.late_topic for job in jobs)),
            prefixes={"group": REFERENCE_GROUP_PREFIX},
        ),
    ]
    dead_letter_topics = _unique(t for row in table if row.cluster == LOCAL for t in row.writes if t.endswith(".dlq"))
    replay_targets = _unique(
        t for row in table if row.cluster == LOCAL for t in row.reads if dead_letter_topic(t) in dead_letter_topics
    )
    ledgers = tuple(replay_ledger_topic(t) for t in dead_letter_topics)
    table += [
        Access(
            DLQ_READER,
            DLQ_READER,
            LOCAL,
            reads=(*dead_letter_topics, *ledgers),
            prefixes={"group": DLQ_READER_GROUP_PREFIX},
        ),
        Access(
            DLQ_REPLAY,
            DLQ_REPLAY,
            LOCAL,
            reads=(*dead_letter_topics, *ledgers),
            # the records go back to their source topics (or one of them, --to), each with its ledger entry in one
            # transaction (an idempotent producer: IDEMPOTENT_WRITE comes with the writes)
            writes=(*replay_targets, *ledgers),
            transactional_ids=(DLQ_REPLAY_TRANSACTIONAL_PREFIX,),
            prefixes={"group": DLQ_READER_GROUP_PREFIX},
        ),
    ]
    return tuple(table)


def principals(cluster: str) -> tuple[str, ...]:
    """The service principals with a row on ``cluster`` (SCRAM users of its broker besides admin and broker)."""
    return _unique(row.principal for row in access_table() if row.cluster == cluster)


# -- grants as (resource type, name, pattern, operation) ----------------------------------------------------
Grant = tuple[str, str, str, str]
CLUSTER_RESOURCE = "kafka-cluster"


def grants(row: Access, *, create_topics: bool = True) -> set[Grant]:
    """What ``row`` allows, as (resource type, resource name, pattern type, operation); nothing else is allowed.
    ``create_topics=False``: no Create on the named topics (where an operator owns them: Strimzi's Topic Operator on
    Kubernetes, the topic set-up service in compose); the topics under a row's prefix are still the service's own."""
    found: set[Grant] = set()
    reading = ("READ", "DESCRIBE", "DESCRIBE_CONFIGS") if row.read_configs else ("READ", "DESCRIBE")
    writing = ("WRITE", "DESCRIBE", "CREATE") if create_topics else ("WRITE", "DESCRIBE")
    for topic in row.reads:
        found |= {("topic", topic, "literal", op) for op in reading}
    for topic in row.writes:
        found |= {("topic", topic, "literal", op) for op in writing}
    for group in row.groups:
        found |= {("group", group, "literal", op) for op in ("READ", "DESCRIBE")}
    for prefix in row.transactional_ids:
        found |= {("transactional_id", prefix, "prefixed", op) for op in ("WRITE", "DESCRIBE")}
    for resource, prefix in row.prefixes.items():
        operations = ("READ", "WRITE", "DESCRIBE", "CREATE") if resource == "topic" else ("READ", "DESCRIBE")
        found |= {(resource, prefix, "prefixed", op) for op in operations}
    if row.writes:
        found.add(("broker", CLUSTER_RESOURCE, "literal", "IDEMPOTENT_WRITE"))
    return found


def bindings(cluster: str, table: Iterable[Access] | None = None) -> list[Any]:
    """The ``confluent_kafka.admin.AclBinding`` of every grant on ``cluster``."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    rows = access_table() if table is None else tuple(table)
    result = []
    for row in rows:
        if row.cluster != cluster:
            continue
        for resource, name, pattern, operation in sorted(grants(row)):
            result.append(
                AclBinding(
                    ResourceType[resource.upper()],
                    name,
                    ResourcePatternType[pattern.upper()],
                    f"User:{row.principal}",
                    "*",
                    AclOperation[operation],
                    AclPermissionType.ALLOW,
                )
            )
    return result


def apply(admin_config: Mapping[str, str], cluster: str, timeout_s: float = 30.0) -> int:
    """Make the broker's ACLs exactly the table's rows for ``cluster`` (as ``admin``); returns how many it holds."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient(dict(admin_config))
    wanted = bindings(cluster)
    anything: Any = None  # a filter's None matches every name, principal and host
    everything = AclBindingFilter(
        ResourceType.ANY, anything, ResourcePatternType.ANY, anything, anything, AclOperation.ANY, AclPermissionType.ANY
    )
    existing = admin.describe_acls(everything, request_timeout=timeout_s).result()
    stale = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
        for b in existing
        if b not in wanted
    ]
    if stale:
        for future in admin.delete_acls(stale, request_timeout=timeout_s).values():
            future.result()
    missing = [binding for binding in wanted if binding not in existing]
    if missing:
        for future in admin.create_acls(missing, request_timeout=timeout_s).values():
            future.result()
    return len(wanted)


def markdown() -> str:
    """The table as the README shows it (``python -m deploy.local.kafka_acls``)."""
    lines = [
        "| service | principal | cluster | may read | may write (and create) | groups | transactional ids |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(names: Iterable[str], suffix: str = "") -> str:
        return ", ".join(f"`{name}{suffix}`" for name in names) or "-"

    for row in access_table():
        reads = [*row.reads, *(f"{p}*" for r, p in row.prefixes.items() if r == "topic")]
        writes = [*row.writes, *(f"{p}*" for r, p in row.prefixes.items() if r == "topic")]
        groups = [*row.groups, *(f"{p}*" for r, p in row.prefixes.items() if r == "group")]
        lines.append(
            f"| {row.service} | `{row.principal}` | {row.cluster} | {cell(reads)} | {cell(writes)} | {cell(groups)} "
            f"| {cell(row.transactional_ids, '*')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
