"""What every PyFlink job shares: its settings, table definitions derived from the Avro contracts, and the runner.

A job is a list of Flink SQL statements built by pure functions (unit-tested without Flink), then executed in one
statement set by ``run`` on the cluster the job was submitted to (``freightline flink submit``). Kafka tables use
Flink's ``avro-confluent`` format against the Schema Registry with the catalogue's own schema text, so the physical
columns are derived from the contract here (``columns``): Flink requires them to match the schema exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings

from schemas import topics
from schemas.catalogue import load_catalogue, schema_text
from schemas.loader import PRIMITIVES, iter_named_types
from services.common.settings import KafkaSettings, PostgresSettings, SchemaRegistrySettings

# the generator's maximum lateness (services/generator/config.py): the default bound of out-of-orderness
DEFAULT_MAX_OUT_OF_ORDERNESS_MS = 30_000


class WindowJobSettings(BaseSettings):
    """Settings every windowed job has; each job subclasses it with its own prefix and topics."""

    source_topic: str
    sink_topic: str
    postgres_table: str
    group_id: str
    max_out_of_orderness_ms: int = Field(
        default=DEFAULT_MAX_OUT_OF_ORDERNESS_MS,
        ge=0,
        description="Bounded out-of-orderness of the event-time watermark (default: the generator's maximum lateness).",
    )
    idle_timeout_ms: int = Field(
        default=10_000, ge=0, description="A source partition quiet this long no longer holds the watermark back."
    )
    checkpoint_interval_ms: int = Field(
        default=10_000, gt=0, description="Checkpoint interval; committed Kafka output appears at checkpoints."
    )
    transaction_timeout_ms: int = Field(
        default=600_000,
        gt=0,
        description="Kafka transaction timeout of the exactly-once sink; must not exceed the broker's "
        "transaction.max.timeout.ms (15 minutes by default).",
    )
    transactional_id_prefix: str = Field(default="", description="Default: the consumer group id.")
    late_topic: str = Field(default=topics.LATE_EVENTS, description="Where events later than their window go.")
    parallelism: int = Field(default=1, ge=1)
    startup_mode: str = Field(
        default="group-offsets", description="group-offsets (earliest when the group has none) or earliest-offset."
    )


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def interval(milliseconds: int) -> str:
    """A SQL day-to-second interval literal of ``milliseconds``."""
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY TO SECOND(3)"


def _flink_type(schema: Any, names: dict[str, Any]) -> tuple[str, bool]:
    """(Flink SQL type, nullable) of an Avro schema, as Flink's own Avro converter maps it."""
    if isinstance(schema, list):
        branches = [branch for branch in schema if branch != "null"]
        if len(branches) != 1:
            raise ValueError(f"unions other than [null, T] have no Flink SQL type: {schema}")
        return _flink_type(branches[0], names)[0], "null" in schema
    if isinstance(schema, str):
        if schema in names:
            return _flink_type(names[schema], names)
        primitive = {
            "string": "STRING",
            "long": "BIGINT",
            "int": "INT",
            "boolean": "BOOLEAN",
            "double": "DOUBLE",
            "float": "FLOAT",
            "bytes": "BYTES",
        }
        return primitive[schema], schema == "null"
    kind = schema["type"]
    logical = schema.get("logicalType")
    if kind == "record":
        names[schema.get("namespace", "") + "." + schema["name"]] = schema
        names[schema["name"]] = schema
        return f"ROW<{', '.join(_field(f, names) for f in schema['fields'])}>", False
    if kind == "enum":
        names[schema.get("namespace", "") + "." + schema["name"]] = schema
        names[schema["name"]] = schema
        return "STRING", False
    if logical in {"timestamp-millis", "local-timestamp-millis"}:
        return "TIMESTAMP(3)", False
    if logical == "date":
        return "DATE", False
    if logical == "decimal":
        return f"DECIMAL({schema['precision']}, {schema.get('scale', 0)})", False
    if kind == "array":
        item, nullable = _flink_type(schema["items"], names)
        return f"ARRAY<{item}{'' if nullable else ' NOT NULL'}>", False
    if kind == "map":
        value, nullable = _flink_type(schema["values"], names)
        return f"MAP<STRING NOT NULL, {value}{'' if nullable else ' NOT NULL'}>", False
    return _flink_type(kind, names)


def _field(field: Mapping[str, Any], names: dict[str, Any]) -> str:
    sql_type, nullable = _flink_type(field["type"], names)
    return f"`{field['name']}` {sql_type}{'' if nullable else ' NOT NULL'}"


def columns(schema_text: str) -> list[str]:
    """The physical columns of a table whose rows are records of ``schema_text`` (a fully expanded schema)."""
    schema = json.loads(schema_text)
    names: dict[str, Any] = {}
    return [_field(field, names) for field in schema["fields"]]


def projected(schema_text: str, fields: Sequence[str]) -> str:
    """The record schema ``schema_text`` (fully expanded) with only ``fields``, in contract order: a reader schema
    Avro resolves records of the full schema against (the other fields are skipped, never decoded).

    A field is a name or a dotted path into a record (``metadata.event_time``; through an array or a ``[null, T]``
    union to its record: ``line_items.quantity``), which keeps only the named fields of that record. A named type
    keeps its definition where it is first defined: a field may use a named type by reference only if the field
    defining it is kept, and a sub-selection applies to a definition, not to a reference."""
    schema = json.loads(schema_text)
    tree: dict[str, Any] = {}
    for path in fields:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    reader = _project(schema, tree)
    dangling = _references(reader) - {definition["name"] for definition in iter_named_types(reader)}
    if dangling:
        raise ValueError(f"{schema['name']}: the projection drops the definitions of {sorted(dangling)}")
    return json.dumps(reader)


def _project(schema: Any, tree: Mapping[str, Any]) -> Any:
    """``schema`` with only the fields ``tree`` names at each level (an empty subtree keeps the whole type)."""
    if not tree:
        return schema
    if isinstance(schema, list):
        return [branch if branch == "null" else _project(branch, tree) for branch in schema]
    if isinstance(schema, dict) and schema.get("type") == "array":
        return {**schema, "items": _project(schema["items"], tree)}
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError(f"only records have fields to select, not {schema!r} (fields {sorted(tree)})")
    unknown = set(tree) - {field["name"] for field in schema["fields"]}
    if unknown:
        raise ValueError(f"{schema['name']} has no fields {sorted(unknown)}")
    kept = [field for field in schema["fields"] if field["name"] in tree]
    return {**schema, "fields": [{**field, "type": _project(field["type"], tree[field["name"]])} for field in kept]}


def _references(schema: Any) -> set[str]:
    """The names of the named types ``schema`` uses by reference (a string type that is not a primitive)."""
    if isinstance(schema, str):
        return set() if schema in PRIMITIVES else {schema}
    if isinstance(schema, list):
        return {name for branch in schema for name in _references(branch)}
    inner = [field["type"] for field in schema.get("fields", ())]
    inner += [schema[key] for key in ("items", "values") if key in schema]
    return {name for child in inner for name in _references(child)}


LIBPQ_TLS_PARAMETERS = ("sslmode", "sslrootcert")


def jdbc_url(dsn: str) -> tuple[str, str, str]:
    """(JDBC url, user, password) of a libpq URL ``postgresql://user[:password]@host:port/db``."""
    parts = urlsplit(dsn)
    if parts.scheme not in {"postgresql", "postgres"} or not parts.hostname:
        raise ValueError(f"POSTGRES_DSN must be a postgresql:// URL, got {dsn!r}")
    port = f":{parts.port}" if parts.port else ""
    return f"jdbc:postgresql://{parts.hostname}{port}{parts.path}", parts.username or "", parts.password or ""


def kafka_source(
    name: str,
    settings: WindowJobSettings,
    kafka: KafkaSettings,
    registry: SchemaRegistrySettings,
    schema_text: str,
    event_time: str,
) -> str:
    """A Kafka source table of Avro records with an event-time column ``event_time`` and its watermark."""
    options = {
        "connector": "kafka",
        "topic": settings.source_topic,
        "properties.bootstrap.servers": kafka.bootstrap_servers,
        "properties.group.id": settings.group_id,
        "properties.isolation.level": "read_committed",
        "scan.startup.mode": settings.startup_mode,
        "properties.auto.offset.reset": "earliest",
        "value.format": "avro-confluent",
        **registry_options(registry),
        "value.avro-confluent.schema": schema_text,
        **_kafka_security(kafka),
    }
    body = [
        *columns(schema_text),
        f"`event_time` AS {event_time}",
        f"WATERMARK FOR `event_time` AS `event_time` - {interval(settings.max_out_of_orderness_ms)}",
    ]
    return _create(name, body, options)


def kafka_sink(
    name: str,
    topic: str,
    settings: WindowJobSettings,
    kafka: KafkaSettings,
    registry: SchemaRegistrySettings,
    schema_text: str,
    key_field: str,
    transactions: str = "",
) -> str:
    """An exactly-once (transactional) Kafka sink of Avro records keyed by ``key_field`` (raw UTF-8 key); each sink
    of a job has its own transactional id prefix (``<prefix>-<transactions>``, by default ``<prefix>-<sink name>``),
    or their transactions would fence."""
    prefix = settings.transactional_id_prefix or settings.group_id
    options = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": kafka.bootstrap_servers,
        "key.format": "raw",
        "key.fields": key_field,
        "value.format": "avro-confluent",
        **registry_options(registry),
        "value.avro-confluent.schema": schema_text,
        "value.avro-confluent.subject": f"{topic}-value",
        "sink.delivery-guarantee": "exactly-once",
        "sink.transactional-id-prefix": f"{prefix}-{transactions or name}",
        "properties.transaction.timeout.ms": str(settings.transaction_timeout_ms),
        **_kafka_security(kafka),
    }
    return _create(name, columns(schema_text), options)


def jdbc_upsert_sink(
    name: str, table: str, columns_sql: Sequence[str], key: Sequence[str], dsn: str, *, untyped_strings: bool = False
) -> str:
    """An idempotent upsert into a PostgreSQL table (INSERT ... ON CONFLICT on ``key``). ``untyped_strings``: strings
    are sent untyped (``stringtype=unspecified``), so PostgreSQL casts them to the column's type (``jsonb``)."""
    url, user, password = jdbc_url(dsn)
    options = {"connector": "jdbc", "url": url, "table-name": table}
    parameters = ["stringtype=unspecified"] if untyped_strings else []
    # TLS as the DSN asks (PgJDBC reads libpq's sslmode and a PEM sslrootcert)
    parameters += [f"{key}={value}" for key, value in parse_qsl(urlsplit(dsn).query) if key in LIBPQ_TLS_PARAMETERS]
    if password:  # Flink takes both or neither; without a password the user goes into the URL
        options.update({"username": user, "password": password})
    elif user:
        parameters.insert(0, f"user={user}")
    if parameters:
        options["url"] = f"{url}?{'&'.join(parameters)}"
    options.update({"sink.buffer-flush.interval": "1s", "sink.max-retries": "5"})
    keys = ", ".join(f"`{column}`" for column in key)
    return _create(name, [*columns_sql, f"PRIMARY KEY ({keys}) NOT ENFORCED"], options)


def registry_options(registry: SchemaRegistrySettings, prefix: str = "value.avro-confluent.") -> dict[str, str]:
    """The ``avro-confluent`` format's registry options: its URL, basic auth when the settings carry credentials
    (``SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO``, else the URL's: Confluent's Java client ignores a URL's credentials
    unless told where they are), and the CA of ``SCHEMA_REGISTRY_SSL_CA_LOCATION`` as a PEM trust store."""
    parts = urlsplit(registry.url)
    options = {f"{prefix}url": urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))}
    if registry.basic_auth_user_info is not None:
        user_info: str | None = registry.basic_auth_user_info.get_secret_value()
    elif parts.username:
        user_info = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    else:
        user_info = None
    if user_info:
        options[f"{prefix}basic-auth.credentials-source"] = "USER_INFO"
        options[f"{prefix}basic-auth.user-info"] = user_info
    if registry.ssl_ca_location:  # an https registry: its CA as a PEM trust store of Confluent's Java client
        options[f"{prefix}properties.schema.registry.ssl.truststore.location"] = registry.ssl_ca_location
        options[f"{prefix}properties.schema.registry.ssl.truststore.type"] = "PEM"
    return options


# Flink's SQL Kafka connector (flink-sql-connector-kafka) shades the Kafka client: its JAAS login module too
KAFKA_SHADED = "org.apache.flink.kafka.shaded."


def _kafka_security(kafka: KafkaSettings) -> dict[str, str]:
    return {f"properties.{key}": value for key, value in kafka.java_client_properties(KAFKA_SHADED).items()}


def _create(name: str, body: Sequence[str], options: Mapping[str, str]) -> str:
    columns_sql = ",\n  ".join(body)
    with_sql = ",\n  ".join(f"{quote(key)} = {quote(value)}" for key, value in options.items())
    return f"CREATE TEMPORARY TABLE `{name}` (\n  {columns_sql}\n) WITH (\n  {with_sql}\n)"


def window_event_id(key: Sequence[str], window_start: datetime) -> str:
    """An aggregate's event id, as ``aggregate_insert`` computes it: MD5 of ``<key parts>|<window start>`` shaped as
    a version-3 (name-based, MD5) UUID, so a window emitted again keeps its id."""
    name = "|".join([*key, f"{window_start:%Y-%m-%d %H:%M:%S.%f}"[:-3]])
    digest = hashlib.md5(name.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-3{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def aggregate_insert(sink: str, windows: str, key: Sequence[str], producer: str, fields: Sequence[str]) -> str:
    """INSERT of a window view into an aggregate topic: the event envelope (id from the key and window start, event
    time = window end, ingest time = emission time, the job as producer), then ``fields`` in contract order."""
    # CAST(window_start AS STRING) is 'YYYY-MM-DD HH:MM:SS.mmm', as window_event_id formats it
    parts = ", ".join([*(f"`{column}`" for column in key), "CAST(`window_start` AS STRING)"])
    event_id = (
        "CONCAT(SUBSTRING(h, 1, 8), '-', SUBSTRING(h, 9, 4), '-3', SUBSTRING(h, 14, 3), '-8', "
        "SUBSTRING(h, 18, 3), '-', SUBSTRING(h, 21, 12))"
    )
    emitted = "CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3))"
    metadata = f"ROW({event_id}, `window_end`, {emitted}, {quote(producer)}, CAST(NULL AS STRING))"
    columns_sql = ", ".join(f"`{field}`" for field in fields)
    return (
        f"INSERT INTO `{sink}`\nSELECT\n  {metadata},\n  {columns_sql}\n"
        f"FROM (SELECT *, MD5(CONCAT_WS('|', {parts})) AS h FROM `{windows}`)"
    )


@dataclass(frozen=True)
class WarehouseColumn:
    name: str
    flink_type: str
    postgres_type: str
    expression: str = ""  # its value over the window view (default: the view's column of the same name)

    def select(self) -> str:
        return f"{self.expression} AS `{self.name}`" if self.expression else f"`{self.name}`"


# the first columns of every warehouse table: the window, UTC
WINDOW_COLUMNS = (
    WarehouseColumn("window_start", "TIMESTAMP(3)", "timestamp(3)"),
    WarehouseColumn("window_end", "TIMESTAMP(3)", "timestamp(3)"),
)


@dataclass(frozen=True)
class WindowJob:
    """One windowed job: its contracts, the window query and the shape of its two outputs.

    ``windows`` is a SELECT over the source table ``source`` (columns of the source contract plus ``event_time``,
    the event-time attribute), or over the ``views`` (name, SELECT) defined before it, giving ``window_start``,
    ``window_end`` and every field of the aggregate. ``key``
    is the aggregate's key (its first column keys the Kafka records); the warehouse table's primary key is the
    window plus ``warehouse_key`` (default ``key``): the columns that name one row of a window's result, which a
    later computation of the same window replaces.
    """

    name: str
    producer: str
    source_contract: str
    sink_contract: str
    key: tuple[str, ...]
    windows: str
    fields: tuple[str, ...]
    warehouse: tuple[WarehouseColumn, ...]
    window_minutes: int
    views: tuple[tuple[str, str], ...] = ()
    late_filter: str = "TRUE"  # which source events the windows count (late ones are reported only if so)
    # the table or view late events are read from: ``source`` or a view of it keeping `metadata`, `event_time` (the
    # time attribute) and the key columns
    late_source: str = "source"
    slide_minutes: int = 0  # hopping windows: the slide (0: tumbling, the slide is the window's size)
    # the source fields the job reads (a projection of its contract; empty: all of them)
    source_fields: tuple[str, ...] = ()
    # the warehouse table's key besides the window (empty: ``key``)
    warehouse_key: tuple[str, ...] = ()

    @property
    def upsert_key(self) -> list[str]:
        """The warehouse table's primary key: the window plus ``warehouse_key`` (or ``key``)."""
        return ["window_start", "window_end", *(self.warehouse_key or self.key)]

    @property
    def late_table(self) -> str:
        """The late-events sink's table, named after the job: Flink names the sink's writer operator
        ``<job>_late_events[<n>]: Writer``, so its records-in counter (``numRecordsIn``, served by the TaskManagers'
        Prometheus reporters) counts the job's late events, also when several jobs run as one Flink job."""
        return f"{self.name}_late_events"

    @property
    def slide(self) -> int:
        """Minutes between window starts: the window's size for tumbling windows."""
        return self.slide_minutes or self.window_minutes

    def late_insert(self, source_topic: str) -> str:
        """INSERT of the source events whose window had closed when they arrived (window end <= the watermark +
        1 ms: the window operator's own test) into the late-events topic, with that window and the watermark.

        With hopping windows an event belongs to several; the window reported is the last of them (it starts at the
        event's time floored to the slide): once it has closed, no window counts the event. An event that missed
        only its earlier windows is still counted by the later ones and not reported."""
        if 60 % self.slide or self.window_minutes % self.slide:
            raise ValueError(
                f"{self.name}: late events need a slide dividing an hour and the window size, not {self.slide}"
            )
        start = (
            f"TIMESTAMPADD(MINUTE, -MOD(EXTRACT(MINUTE FROM `event_time`), {self.slide}), "
            "FLOOR(`event_time` TO MINUTE))"
        )
        emitted = "CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3))"
        envelope = f"ROW(`metadata`.`event_id`, `event_time`, {emitted}, {quote(self.producer)}, CAST(NULL AS STRING))"
        key = f"CONCAT_WS('|', {', '.join(f'`{column}`' for column in self.key)})"
        return f"""INSERT INTO `{self.late_table}`
SELECT {envelope}, {quote(self.name)}, {quote(source_topic)}, `window_key`, `window_start`,
  TIMESTAMPADD(MINUTE, {self.window_minutes}, `window_start`), `watermark`
FROM (
  SELECT `metadata`, `event_time`, {key} AS `window_key`, {start} AS `window_start`,
    CURRENT_WATERMARK(`event_time`) AS `watermark`
  FROM `{self.late_source}` WHERE {self.late_filter}
)
WHERE `watermark` IS NOT NULL
  AND TIMESTAMPADD(MINUTE, {self.window_minutes}, `window_start`) <= `watermark` + INTERVAL '0.001' SECOND"""

    def pipeline_name(self, settings: WindowJobSettings) -> str:
        """The job's name on the cluster: the job and its consumer group, which is the identity of a deployment (its
        committed offsets and transactional ids: two running jobs of one group would fence each other)."""
        return f"{self.name} [{settings.group_id}]"

    def postgres_ddl(self, table: str) -> str:
        """The upsert target (idempotent DDL); timestamps are UTC."""
        schema = table.split(".")[0] if "." in table else "public"
        body = [f"  {column.name} {column.postgres_type} NOT NULL" for column in self.warehouse]
        body.append(f"  PRIMARY KEY ({', '.join(self.upsert_key)})")
        return (
            f"CREATE SCHEMA IF NOT EXISTS {schema};\nCREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(body) + "\n);"
        )

    def statements(
        self,
        settings: WindowJobSettings,
        kafka: KafkaSettings,
        registry: SchemaRegistrySettings,
        postgres: PostgresSettings,
    ) -> tuple[list[str], list[str]]:
        """(table and view definitions, inserts) of the job."""
        catalogue = load_catalogue()
        source_schema = schema_text(catalogue.topic(self.source_contract).value_schema)
        if self.source_fields:
            source_schema = projected(source_schema, self.source_fields)
        sink_schema = schema_text(catalogue.topic(self.sink_contract).value_schema)
        late_schema = schema_text(catalogue.topic(topics.LATE_EVENTS).value_schema)
        warehouse = [f"`{column.name}` {column.flink_type} NOT NULL" for column in self.warehouse]
        definitions = [
            kafka_source("source", settings, kafka, registry, source_schema, "`metadata`.`event_time`"),
            kafka_sink("aggregates", settings.sink_topic, settings, kafka, registry, sink_schema, self.key[0]),
            # the transactional ids keep the name of the sink before it was named after the job
            kafka_sink(
                self.late_table, settings.late_topic, settings, kafka, registry, late_schema, "job", "late_events"
            ),
            jdbc_upsert_sink(
                "warehouse",
                settings.postgres_table,
                warehouse,
                self.upsert_key,
                postgres.dsn,
                untyped_strings=any(column.postgres_type == "jsonb" for column in self.warehouse),
            ),
            *(f"CREATE TEMPORARY VIEW `{name}` AS\n{select}" for name, select in self.views),
            f"CREATE TEMPORARY VIEW `windows` AS\n{self.windows}",
        ]
        columns_sql = ", ".join(column.select() for column in self.warehouse)
        inserts = [
            aggregate_insert("aggregates", "windows", self.key, self.producer, self.fields),
            f"INSERT INTO `warehouse` SELECT {columns_sql} FROM `windows`",
            self.late_insert(settings.source_topic),
        ]
        return definitions, inserts

    def submit(self, settings: WindowJobSettings) -> None:
        """Entrypoint on the cluster's client (``flink run -py``): build the job and submit it."""
        submit_jobs([(self, settings)])


# joins the pipeline names of window jobs run as one Flink job into that job's name
PIPELINE_SEPARATOR = " + "


def pipeline_name(jobs: Sequence[tuple[WindowJob, WindowJobSettings]]) -> str:
    """The name on the cluster of ``jobs`` run as one Flink job: their pipeline names joined by
    ``PIPELINE_SEPARATOR`` (one job's own pipeline name when alone), so each deployment it holds stays visible."""
    return PIPELINE_SEPARATOR.join(job.pipeline_name(settings) for job, settings in jobs)


def pipeline_names(flink_job_name: str) -> list[str]:
    """The pipeline names of the window jobs a Flink job of that name runs."""
    return flink_job_name.split(PIPELINE_SEPARATOR)


def submit_jobs(jobs: Sequence[tuple[WindowJob, WindowJobSettings]]) -> None:
    """Entrypoint on the cluster's client: build ``jobs`` and submit them as one Flink job (one client, one plan,
    one slot at parallelism 1). Each job keeps its own tables (in a database named after it), topics, consumer
    group, transactional ids and PostgreSQL table; the job-wide configuration must be the same for all of them."""
    if not jobs:
        raise ValueError("no window job to submit")
    name = pipeline_name(jobs)
    config = shared_config([job_config(settings, name) for _job, settings in jobs])
    kafka, registry, postgres = KafkaSettings(), SchemaRegistrySettings(), PostgresSettings()
    parts = [(job.name, *job.statements(settings, kafka, registry, postgres)) for job, settings in jobs]
    job_id = run(config, parts)
    print(f"submitted {', '.join(job.name for job, _ in jobs)} as job {job_id}", flush=True)


def shared_config(configs: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The one configuration of jobs run together: theirs, which must agree on every key."""
    merged = dict(configs[0])
    for config in configs[1:]:
        for key in merged.keys() | config.keys():
            if merged.get(key) != config.get(key):
                raise ValueError(
                    f"window jobs run as one Flink job must share {key}: {merged.get(key)!r} and {config.get(key)!r}"
                )
    return merged


def job_config(settings: WindowJobSettings, job_name: str) -> dict[str, str]:
    """Table configuration of a windowed job: exactly-once checkpoints, UTC, idle sources, its name, and object reuse:
    records pass between chained operators without a copy each (the jobs are SQL only, whose operators copy what they
    keep; Nexmark measures Flink with it on)."""
    return {
        "pipeline.name": job_name,
        "parallelism.default": str(settings.parallelism),
        "execution.checkpointing.interval": f"{settings.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "pipeline.object-reuse": "true",
        "table.local-time-zone": "UTC",
        "table.exec.source.idle-timeout": f"{settings.idle_timeout_ms} ms",
    }


def run(config: Mapping[str, str], parts: Sequence[tuple[str, Sequence[str], Sequence[str]]]) -> str:
    """Submit every INSERT of ``parts`` (database, table and view definitions, inserts) as one job on the cluster;
    returns the job id. Each part's tables and views are created in a database of its own, where its inserts are
    planned (an insert is resolved when added), so parts may use the same names.

    Runs in the PyFlink environment only (``flink run -py``): pyflink is imported here, never at module import.
    """
    from pyflink.table import EnvironmentSettings, TableEnvironment

    table_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in config.items():
        table_env.get_config().set(key, value)
    statement_set = table_env.create_statement_set()
    for database, statements, inserts in parts:
        table_env.execute_sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        table_env.use_database(database)
        for statement in statements:
            table_env.execute_sql(statement)
        for insert in inserts:
            statement_set.add_insert_sql(insert)
    result = statement_set.execute()
    client = result.get_job_client()
    return str(client.get_job_id()) if client is not None else ""
