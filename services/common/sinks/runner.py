"""The loop every sink runs: consume a batch, decode it, dead-letter what cannot be written, write the rest
durably to the target, and only then commit the batch's offsets.

A sink provides a ``SinkTarget``. The runner owns the Kafka consumer (``ConsumerLoop``), the producer used for
dead letters, the metrics server and the shutdown flag. While the target is down the loop pauses consumption
(``pause_while``) and probes the target every ``health_interval_s``; a failed write rewinds the batch, which is
written again after a back-off (targets make re-writes idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from confluent_kafka import Message
from prometheus_client import Counter, Gauge, Histogram

from services.common.avro_validate import metadata_validator_for, validator_for
from services.common.deadletter import DeadLetterPublisher, PoisonRecord
from services.common.endpoints import Endpoint, kafka_endpoint, registry_endpoint, require_reachable
from services.common.kafka import ConsumerLoop, Producer, consumer_config, group_instance_id, producer_config
from services.common.lifecycle import Shutdown
from services.common.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, MetricsServer, ServiceMetrics
from services.common.serde import HEADER, AvroSerde, SerdeError, schema_id_of
from services.common.settings import KafkaSettings, RedactedSettings, ServiceSettings, secret_values
from services.common.sinks.records import (
    EPOCH,
    PrefixError,
    SinkRecord,
    event_id_of,
    event_time_of,
    kafka_timestamp,
    raw_body,
    read_metadata_prefix,
    starts_with_metadata,
)
from services.common.sinks.settings import SinkSettings

log = logging.getLogger(__name__)

TopicPartitionKey = tuple[str, int]


class SinkMetrics:
    """The standard service metrics plus what every sink reports about its target."""

    def __init__(self, service: str, metrics: ServiceMetrics | None = None) -> None:
        self.base = metrics or ServiceMetrics(service)
        self.service = service
        prefix = f"freightline_{service.replace('-', '_')}"
        r = self.base.registry
        self.records_written = Counter(
            f"{prefix}_records_written_total", "Records durably written to the target.", ["topic"], registry=r
        )
        self.bytes_written = Counter(
            f"{prefix}_bytes_written_total", "Bytes durably written to the target.", ["topic"], registry=r
        )
        self.files_committed = Counter(
            f"{prefix}_files_committed_total",
            "Files, objects or bulk writes committed to the target.",
            ["topic"],
            registry=r,
        )
        self.write_latency = Histogram(
            f"{prefix}_write_latency_seconds",
            "Time of one durable write to the target.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.write_records = Histogram(
            f"{prefix}_write_batch_records",
            "Records per durable write to the target (the batch handed to one write).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.target_up = Gauge(f"{prefix}_target_up", "1 while the target answers, else 0.", registry=r)
        self.skipped = Counter(
            f"{prefix}_records_skipped_total",
            "Replayed records skipped because the target already holds them.",
            ["topic"],
            registry=r,
        )


@dataclass
class SinkContext:
    """What a target may use while writing."""

    service: str
    serde: AvroSerde
    producer: Producer
    dead_letters: DeadLetterPublisher
    metrics: SinkMetrics
    _dead: OrderedDict[tuple[str, int, int], None] = field(default_factory=OrderedDict)
    # per topic and wire header (magic byte and schema id) of that topic's contract: the schema id, whether its
    # writer schema starts with the metadata envelope, and the body check when bodies are checked (``decode_batch``)
    wire_headers: dict[str, dict[bytes, tuple[int, bool, Callable[..., Any] | None]]] = field(default_factory=dict)

    def dead_letter(self, message: Message, error: BaseException | str, error_type: str | None = None) -> None:
        """Publish a dead letter once per record and process (a replayed batch does not publish twice)."""
        key = (message.topic() or "", message.partition() or 0, message.offset() or 0)
        if key in self._dead:
            return
        self.dead_letters.publish(message, error, error_type)
        self._dead[key] = None
        while len(self._dead) > 100_000:
            self._dead.popitem(last=False)

    def flush_dead_letters(self, timeout: float = 60.0) -> None:
        """Make the dead letters published so far durable (before the target commits past them)."""
        self.producer.flush(timeout)


class SinkTarget(Protocol):
    def open(self) -> None:
        """Connect and prepare the target (indexes, buckets); raises while the target is unreachable."""

    def healthy(self) -> bool:
        """A cheap probe: True when the target answers."""

    # A target may declare ``needs_values = False`` (class attribute) when it keeps the records' original bytes and
    # needs only their event ids and times: the runner then skips full decoding where it can (``decode_batch``).
    # A target that copies the bodies verbatim declares ``check_bodies = True``: each body is then checked against
    # its writer schema as a whole before the target sees it, and dead-lettered with the reason if it fails.

    def write(self, records: list[SinkRecord], batch: list[Message]) -> None:
        """Make ``records`` durable in the target (idempotently) or raise; ``batch`` is the whole Kafka batch."""

    def revoked(self, partitions: list[TopicPartitionKey]) -> None:
        """Forget per-partition state of partitions this instance no longer owns."""

    # A target may also define ``assigned(partitions)``: called when partitions are assigned, before their first
    # batch arrives (the file sinks recover them there, while the first fetch is in flight).

    def close(self) -> None: ...


class TargetHealth:
    """Cached health of the target: down after a failed write or a failed readiness probe, then probed again every
    ``interval_s`` until it answers."""

    def __init__(self, probe: Callable[[], bool], interval_s: float, metrics: SinkMetrics | None = None) -> None:
        self.probe = probe
        self.interval_s = interval_s
        self.metrics = metrics
        self._up = True
        self._checked = float("-inf")  # never probed
        self._lock = threading.Lock()

    def mark_down(self) -> None:
        with self._lock:
            self._set(False)
            self._checked = time.monotonic()

    def _set(self, up: bool) -> None:
        if up != self._up:
            log.warning("target is %s", "back up: resuming" if up else "down: pausing consumption")
        self._up = up
        if self.metrics is not None:
            self.metrics.target_up.set(1 if up else 0)

    @property
    def up(self) -> bool:
        """The loop's view: up until a write fails, then probed every ``interval_s`` until the target answers."""
        return self._current(probe_while_up=False)

    def ready(self) -> bool:
        """Readiness: probed at most every ``interval_s`` while up too, so that an idle sink reports an outage (and
        pauses) before its next write fails."""
        return self._current(probe_while_up=True)

    def _current(self, *, probe_while_up: bool) -> bool:
        with self._lock:
            if (self._up and not probe_while_up) or time.monotonic() - self._checked < self.interval_s:
                return self._up
            self._checked = time.monotonic()
        try:
            ok = bool(self.probe())
        except Exception:  # a probe must never kill the loop
            ok = False
        with self._lock:
            self._set(ok)
            return ok


def decode_batch(
    batch: list[Message], ctx: SinkContext, *, values: bool = True, check_bodies: bool = False
) -> list[SinkRecord]:
    """Decode a batch; records that are not valid wire-format Avro, or not of their topic's contract (a writer
    schema that is not a version of the topic's value subject: ``wrong_contract``), go to the dead-letter topic.

    With ``values=False`` (targets that keep the original bytes) records whose writer schema starts with the
    ``metadata`` envelope are not decoded in full: only their event id and event time are read
    (``read_metadata_prefix``) and ``SinkRecord.value`` is None. Other schemas, and bodies whose prefix does not
    read, are decoded in full.

    With ``check_bodies=True`` (targets that copy the bodies verbatim, e.g. into files) every body is checked
    against its writer schema as a whole (``services.common.avro_validate``: no values are built) and dead-lettered
    with the reason when it is not exactly one value of it; for schemas starting with the envelope the check
    also reads the event id and time.
    """
    records: list[SinkRecord] = []
    append = records.append
    by_topic = ctx.wire_headers
    last_topic: str | None = None
    headers: dict[bytes, tuple[int, bool, Callable[..., Any] | None]] = {}
    header = HEADER.size
    epoch = EPOCH
    millis = timedelta(milliseconds=1)
    fast_path = not values
    for message in batch:
        value = message.value()
        topic = message.topic() or ""
        if topic != last_topic:
            headers = by_topic.setdefault(topic, {})
            last_topic = topic
        try:
            if value is None:
                raise PoisonRecord("tombstone", "record has no value")
            known = headers.get(value[:header])
            if known is None:
                known = headers[value[:header]] = _wire_header(value, topic, ctx, check_bodies)
            schema_id, fast, check = known
            if fast and fast_path:
                if check is not None:
                    event_id, event_ms = check(value, header)
                    event_time = epoch + event_ms * millis
                else:
                    try:
                        event_id, event_ms = read_metadata_prefix(value, header)
                        event_time = epoch + event_ms * millis
                    except (PrefixError, OverflowError):
                        # a fresh exception each time: one shared object would chain every raise's traceback
                        # onto itself and keep each batch alive (and make every dead letter's traceback longer)
                        raise _DecodeInFull from None  # the full decode tells what is wrong with it
                key = message.key()
                append(
                    SinkRecord(
                        topic,
                        message.partition() or 0,
                        message.offset() or 0,
                        key if key is None or isinstance(key, bytes) else str(key).encode(),
                        schema_id,
                        None,
                        event_id,
                        event_time,
                        value[header:],
                    )
                )
                continue
            if check is not None:
                check(value, header)
            append(_decoded(message, value, schema_id, ctx))
        except _DecodeInFull:
            try:
                append(_decoded(message, value or b"", schema_id, ctx))
            except SerdeError as error:
                ctx.dead_letter(message, error)
        except (SerdeError, PoisonRecord) as error:
            ctx.dead_letter(message, error)
    return records


class _DecodeInFull(Exception):
    """The metadata prefix does not read: the full decode tells why."""


def _wire_header(
    value: bytes, topic: str, ctx: SinkContext, check_bodies: bool
) -> tuple[int, bool, Callable[..., Any] | None]:
    """(schema id, whether its writer schema starts with the metadata envelope, the body check or None) of a
    payload's wire header on ``topic``; looked up once per topic and header. Raises ``WrongContract`` when the
    schema is not a version of the topic's value subject (another contract: dead-lettered)."""
    schema_id = schema_id_of(value)
    writer = ctx.serde.writer_schema(schema_id)
    ctx.serde.check_contract(schema_id, topic)
    fast = starts_with_metadata(writer)
    check: Callable[..., Any] | None = None
    if check_bodies:
        try:
            check = metadata_validator_for(writer) if fast else validator_for(writer)
        except ValueError as error:  # a schema the checker does not handle: the full decode checks it instead
            log.warning("schema %d: bodies are decoded in full instead of checked: %s", schema_id, error)
    return schema_id, fast, check


def _decoded(message: Message, value: bytes, schema_id: int, ctx: SinkContext) -> SinkRecord:
    """A record decoded in full (raises ``SerdeError`` when it does not decode)."""
    topic = message.topic() or ""
    partition = message.partition() or 0
    offset = message.offset() or 0
    key = message.key()
    if key is not None and not isinstance(key, bytes):
        key = str(key).encode()
    decoded = ctx.serde.decode(value)
    return SinkRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        schema_id=schema_id,
        value=decoded,
        event_id=event_id_of(decoded, topic, partition, offset),
        event_time=event_time_of(decoded, kafka_timestamp(message)),
        body=raw_body(value),
    )


class SinkRunner:
    """Wires a target to Kafka, the dead-letter topic, metrics and graceful shutdown."""

    def __init__(
        self,
        service: ServiceSettings,
        settings: SinkSettings,
        kafka: KafkaSettings,
        serde: AvroSerde,
        target_factory: Callable[[SinkContext], SinkTarget],
        *,
        shutdown: Shutdown,
        consumer_overrides: dict[str, Any] | None = None,
        instance_id: str | None = None,
    ) -> None:
        """``instance_id``: static group membership (``group.instance.id``) for the sink's consumer; None for
        dynamic membership (the entrypoint, ``run_sink``, passes one)."""
        self.service = service
        self.settings = settings
        self.shutdown = shutdown
        name = service.service_name
        self.metrics = SinkMetrics(name)
        self.producer = Producer(producer_config(kafka, f"{name}-dlq", **{"linger.ms": 5}), self.metrics.base)
        self.context = SinkContext(
            service=name,
            serde=serde,
            producer=self.producer,
            dead_letters=DeadLetterPublisher(self.producer, serde, service=name, metrics=self.metrics.base),
            metrics=self.metrics,
        )
        self.target = target_factory(self.context)
        self.needs_values = bool(getattr(self.target, "needs_values", True))
        self.check_bodies = bool(getattr(self.target, "check_bodies", False))
        self.health = TargetHealth(self.target.healthy, settings.health_interval_s, self.metrics)
        self.metrics.target_up.set(1)
        self.loop = ConsumerLoop(
            consumer_config(
                kafka,
                settings.group_id,
                name,
                instance_id=instance_id,
                **{**settings.consumer_overrides(), **(consumer_overrides or {})},
            ),
            settings.topic_list(),
            self.handle,
            shutdown=shutdown,
            producer=self.producer,
            metrics=self.metrics.base,
            batch_size=settings.batch_size,
            batch_timeout_s=settings.batch_timeout_s,
            batch_idle_s=settings.batch_idle_s,
            retry_backoff_s=settings.retry_backoff_s,
            max_retry_backoff_s=settings.max_retry_backoff_s,
            pause_while=lambda: not self.health.up,
            on_revoked=self.target.revoked,
            on_assigned=getattr(self.target, "assigned", None),
        )
        self.server: MetricsServer | None = None
        self.opened = False

    def handle(self, batch: list[Message]) -> None:
        records = decode_batch(batch, self.context, values=self.needs_values, check_bodies=self.check_bodies)
        started = time.monotonic()
        try:
            self.target.write(records, batch)
        except Exception:
            self.health.mark_down()
            raise
        self.metrics.write_latency.observe(time.monotonic() - started)
        self.metrics.write_records.observe(len(records))
        now = time.time()
        by_topic: dict[str, list[SinkRecord]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        for topic, items in by_topic.items():
            self.metrics.base.record_in(topic, "ok", len(items))
            age = self.metrics.base.event_age.labels(self.metrics.service, topic)
            sample = items[:: max(len(items) // 100, 1)]  # a sample of each batch keeps the cost flat
            age.observe_many(max(now - record.event_time.timestamp(), 0.0) for record in sample)

    def open_target(self) -> bool:
        """Open the target, retrying with back-off until it answers or shutdown is requested."""
        backoff = self.settings.retry_backoff_s
        while not self.shutdown.requested:
            try:
                self.target.open()
            except Exception as error:
                self.metrics.target_up.set(0)
                log.warning(
                    "target not reachable yet (%s: %s); retrying in %.1fs", type(error).__name__, error, backoff
                )
                self.shutdown.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_retry_backoff_s)
                continue
            self.metrics.target_up.set(1)
            self.opened = True
            return True
        return False

    def ready(self) -> bool:
        return self.opened and self.health.ready() and not self.shutdown.requested

    def run(self) -> None:
        self.server = MetricsServer.for_service(self.metrics.base, self.service, ready=self.ready).start()
        try:
            if self.open_target():
                log.info("sink %s consuming %s", self.service.service_name, self.settings.topic_list())
                self.loop.run()  # returns after SIGTERM: the last batch is written and committed first
            else:
                self.loop.close()
        finally:
            self.target.close()
            self.server.stop()
            log.info("sink %s stopped", self.service.service_name)


def run_sink(
    service_name: str,
    settings: SinkSettings,
    target_factory: Callable[[SinkContext], SinkTarget],
    target_endpoint: Endpoint,
    target_settings: RedactedSettings | None = None,
) -> int:
    """Entrypoint body shared by the sinks: read the environment, check that Kafka, the registry and the target
    answer, run until SIGTERM, exit 0; the credentials of every settings (``target_settings``: the target's) are
    masked in the logs."""
    from services.common.logging import configure_logging
    from services.common.serde import registry_client
    from services.common.settings import SchemaRegistrySettings
    from services.common.tracing import configure_service_tracing

    service = ServiceSettings(service_name=service_name)
    kafka, registry = KafkaSettings(), SchemaRegistrySettings()
    require_reachable([kafka_endpoint(kafka), registry_endpoint(registry), target_endpoint], service.startup_timeout_s)
    configure_logging(
        service.service_name, service.log_level, secrets=secret_values(settings, kafka, registry, target_settings)
    )
    configure_service_tracing(service)
    shutdown = Shutdown().enforce(service.shutdown_timeout_s).install()
    serde = AvroSerde(registry_client(registry))
    runner = SinkRunner(
        service,
        settings,
        kafka,
        serde,
        target_factory,
        shutdown=shutdown,
        instance_id=group_instance_id(service.service_name, settings.instance_id),
    )
    runner.run()
    return 0
