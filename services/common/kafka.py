"""Kafka clients every service uses: an idempotent producer and an at-least-once batch consumer loop.

The consumer loop's contract: a batch's offsets are committed only after the batch handler returned and every
record it produced was acknowledged by the broker (``acks=all``). A handler that raises, or a delivery that
fails, rewinds the batch's partitions to the batch's first offsets and the batch is processed again after a
back-off: nothing is committed that was not processed, and a crash replays at most the uncommitted batch.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka import Producer as _RawProducer
from confluent_kafka.admin import AdminClient, NewTopic
from opentelemetry import context as otel_context
from opentelemetry import trace
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from services.common import tracing
from services.common.lifecycle import Shutdown
from services.common.metrics import AGE_SAMPLE, ServiceMetrics
from services.common.settings import KafkaSettings

if TYPE_CHECKING:
    from services.common.source_offsets import TransactionalCommits

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]


def headers_of(message: Message) -> list[tuple[str, bytes | None]]:
    """A record's headers as a list of (key, bytes) pairs, whatever form the client returned."""
    raw = message.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]


class DeliveryError(RuntimeError):
    """Records the broker did not acknowledge."""


def producer_config(settings: KafkaSettings, client_id: str, **overrides: Any) -> dict[str, Any]:
    """Durable defaults: idempotence, acks=all, compression, bounded local buffer."""
    config: dict[str, Any] = {
        **settings.client_config(),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        # Records leave within 5 ms when nobody waits for them; a consumer loop's flush sends at once anyway
        # (librdkafka ignores linger.ms while flushing), so batches still fill under load.
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.kbytes": 65_536,  # bounded memory: produce() blocks (polls) when full
        "queue.buffering.max.messages": 200_000,
        "delivery.timeout.ms": 120_000,
    }
    config.update(overrides)
    return config


def consumer_config(
    settings: KafkaSettings, group_id: str, client_id: str, *, instance_id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """Manual commits only, from the earliest offset, with a bounded fetch queue.

    ``instance_id`` makes the consumer a static member of its group (``group.instance.id``, KIP-345): a
    restarted process with the same id takes its partitions back at once instead of waiting out the dead
    member's session (see ``group_instance_id``). A static member does not leave the group on close, so its
    partitions wait for it (up to ``session.timeout.ms``) rather than moving to another member.
    """
    config: dict[str, Any] = {
        **settings.client_config(),
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Records of transactions (the mirror's exactly-once copies) only once committed; aborted ones never.
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "queued.max.messages.kbytes": 32_768,  # bounded memory per consumer
        "fetch.max.bytes": 16_777_216,
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 30_000,
        "max.poll.interval.ms": 300_000,
    }
    if instance_id:
        config["group.instance.id"] = instance_id
    config.update(overrides)
    return config


def group_instance_id(service: str, configured: str | None) -> str | None:
    """The static group member id of this process: ``configured`` when set (an empty value turns static
    membership off), else ``<service>-<host name>``, stable across restarts of one deployment's instance (a pod
    name, a host). Two instances of one service sharing a host must each be given their own id."""
    if configured is not None:
        return configured.strip() or None
    return f"{service}-{socket.gethostname()}"


class RecordCopier:
    """A pre-bound fast path for copying consumed records as they are (key, headers, partition, timestamp kept,
    no trace context injected): ``copier(topic, value, key, headers, partition, timestamp_ms)``; a timestamp of
    0 lets the client stamp the record. Deliveries are counted exactly as ``Producer.produce`` counts them."""

    __slots__ = ("_callback", "_poll", "_produce", "_unconfirmed")

    def __init__(self, producer: Producer) -> None:
        self._produce = producer._producer.produce
        self._poll = producer._producer.poll
        self._callback = producer._on_delivery if producer.report_successes else None
        self._unconfirmed = None if producer.report_successes else producer._unconfirmed

    def __call__(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Any, partition: int, timestamp: int
    ) -> None:
        """Queue one record; blocks (serving delivery reports) while the local buffer is full."""
        while True:
            try:
                if self._callback is None:
                    self._produce(topic, value, key, partition=partition, timestamp=timestamp, headers=headers)
                else:
                    self._produce(
                        topic,
                        value,
                        key,
                        partition=partition,
                        timestamp=timestamp,
                        headers=headers,
                        on_delivery=self._callback,
                    )
                break
            except BufferError:
                self._poll(0.05)
        if self._unconfirmed is not None:
            self._unconfirmed[topic] += 1


class TopicSender:
    """A pre-bound fast path to one topic: ``sender(value, key, timestamp_ms)``.

    For hot loops producing records that carry no trace context (generated or replayed data): no header
    handling, no keyword building. Deliveries are counted exactly as ``Producer.produce`` counts them.
    """

    __slots__ = ("_callback", "_poll", "_produce", "_unconfirmed", "topic")

    def __init__(self, producer: Producer, topic: str) -> None:
        self.topic = topic
        self._produce = producer._producer.produce
        self._poll = producer._producer.poll
        self._callback = producer._on_delivery if producer.report_successes else None
        self._unconfirmed = None if producer.report_successes else producer._unconfirmed

    def __call__(self, value: bytes, key: str | bytes | None, timestamp: int) -> None:
        """Queue one record; blocks (serving delivery reports) while the local buffer is full."""
        while True:
            try:
                if self._callback is None:
                    self._produce(self.topic, value, key, timestamp=timestamp)
                else:
                    self._produce(self.topic, value, key, on_delivery=self._callback, timestamp=timestamp)
                break
            except BufferError:
                self._poll(0.05)
        if self._unconfirmed is not None:
            self._unconfirmed[self.topic] += 1


class TracedSender:
    """A ``TopicSender`` that starts a trace per record (a ``send <topic>`` producer span, kept at the tracer
    provider's sampling ratio) and carries it in the record's headers; a record left out of the sample leaves
    exactly as ``TopicSender`` sends it. ``Producer.sender`` hands these out only while tracing is on."""

    __slots__ = ("_attributes", "_name", "_plain", "_producer", "_tracer", "topic")

    def __init__(self, producer: Producer, topic: str, tracer: trace.Tracer) -> None:
        self.topic = topic
        self._plain = TopicSender(producer, topic)
        self._producer = producer
        self._tracer = tracer
        self._name = f"send {topic}"
        self._attributes = {"messaging.system": "kafka", "messaging.destination.name": topic}

    def __call__(self, value: bytes, key: str | bytes | None, timestamp: int) -> None:
        span = self._tracer.start_span(self._name, kind=trace.SpanKind.PRODUCER, attributes=self._attributes)
        if not span.is_recording():
            self._plain(value, key, timestamp)
            return
        try:
            self._producer.produce(self.topic, value, key, timestamp=timestamp, context=trace.set_span_in_context(span))
        finally:
            span.end()


Sender = TopicSender | TracedSender


class Producer:
    """An idempotent producer that counts delivery reports and injects trace context into headers."""

    def __init__(
        self, config: dict[str, Any], metrics: ServiceMetrics | None = None, *, report_successes: bool = True
    ) -> None:
        """``report_successes=False`` asks the broker client for error reports only (no Python call per
        acknowledged record): successes are then counted when ``flush`` confirms that nothing is pending, and
        per-record ``on_delivery`` callbacks are refused."""
        self.report_successes = report_successes
        config = dict(config)
        if not report_successes:
            config["delivery.report.only.error"] = True
            config["on_delivery"] = self._on_delivery
        self._producer = _RawProducer(config)
        self.metrics = metrics
        self.queued = 0
        self.delivered = 0
        self.failures: list[tuple[str, KafkaError]] = []
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._unconfirmed: dict[str, int] = defaultdict(int)

    @property
    def raw(self) -> _RawProducer:
        """The underlying confluent-kafka producer (transactions: ``services.common.source_offsets``)."""
        return self._producer

    @property
    def in_flight(self) -> int:
        """Records queued or sent and not yet acknowledged."""
        return len(self._producer)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        topic = message.topic() or "?"
        if error is None:
            self.delivered += 1
            self._counts[(topic, "ok")] += 1
        else:
            self.failures.append((topic, error))
            self._counts[(topic, "error")] += 1
            if not self.report_successes:
                self._unconfirmed[topic] -= 1

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        *,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        context: otel_context.Context | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Queue one record; blocks (serving delivery reports) while the local buffer is full."""
        kwargs: dict[str, Any] = {}
        carrier = tracing.inject(headers, context)
        if carrier:
            kwargs["headers"] = carrier
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        if self.report_successes:
            if on_delivery is None:
                kwargs["on_delivery"] = self._on_delivery
            else:

                def callback(error: KafkaError | None, message: Message) -> None:
                    self._on_delivery(error, message)
                    on_delivery(error, message)

                kwargs["on_delivery"] = callback
        elif on_delivery is not None:
            raise ValueError("per-record delivery callbacks need a producer with report_successes=True")
        else:
            self._unconfirmed[topic] += 1
        produce = self._producer.produce
        while True:
            try:
                produce(topic, value, key, **kwargs)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.queued += 1
        if self.queued % 1000 == 0:
            self._producer.poll(0)  # serve delivery reports as we go

    def sender(self, topic: str) -> Sender:
        """The fast path to one topic (see ``TopicSender``); while tracing is on, one that starts a trace per
        record it sends (``TracedSender``)."""
        if tracing.active():
            return TracedSender(self, topic, tracing.tracer("freightline.producer"))
        return TopicSender(self, topic)

    def copier(self) -> RecordCopier:
        """The fast path for copying consumed records as they are (see ``RecordCopier``)."""
        return RecordCopier(self)

    def poll(self, timeout: float = 0) -> int:
        served = int(self._producer.poll(timeout))
        self._publish_counts()
        return served

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued record is acknowledged; raise ``DeliveryError`` for any that was not."""
        remaining = self._producer.flush(timeout)
        if not remaining and self._unconfirmed:
            # Error-only reports: whatever was queued and did not fail is now acknowledged.
            for topic, count in self._unconfirmed.items():
                self.delivered += count
                self._counts[(topic, "ok")] += count
            self._unconfirmed.clear()
        self._publish_counts()
        if remaining:
            raise DeliveryError(f"{remaining} records still unacknowledged after {timeout}s")
        if self.failures:
            failures, self.failures = self.failures, []
            first_topic, first_error = failures[0]
            raise DeliveryError(f"{len(failures)} deliveries failed; first: {first_topic}: {first_error}")

    def _publish_counts(self) -> None:
        if self.metrics is not None and self._counts:
            for (topic, outcome), count in self._counts.items():
                self.metrics.record_out(topic, outcome, count)
        self._counts.clear()

    def list_topics(self, timeout: float = 10.0) -> Any:
        return self._producer.list_topics(timeout=timeout)

    def close(self, timeout: float = 60.0) -> None:
        self.flush(timeout)


BatchHandler = Callable[[list[Message]], None]
MAX_BATCH_LINKS = 32
"""The records' spans a ``process batch`` span links to at most."""


class ConsumerLoop:
    """Consume in batches, hand each batch to ``handler``, commit only what is durable downstream."""

    def __init__(
        self,
        config: dict[str, Any],
        topics: Sequence[str],
        handler: BatchHandler,
        *,
        shutdown: Shutdown,
        producer: Producer | None = None,
        metrics: ServiceMetrics | None = None,
        batch_size: int = 500,
        batch_timeout_s: float = 0.1,
        batch_idle_s: float | None = 0.002,
        poll_timeout_s: float = 0.5,
        retry_backoff_s: float = 1.0,
        max_retry_backoff_s: float = 30.0,
        lag_interval_s: float = 10.0,
        flush_timeout_s: float = 60.0,
        pause_while: Callable[[], bool] | None = None,
        on_assigned: Callable[[list[tuple[str, int]]], None] | None = None,
        on_revoked: Callable[[list[tuple[str, int]]], None] | None = None,
        on_poll: Callable[[int], None] | None = None,
        transactions: TransactionalCommits | None = None,
    ) -> None:
        """Batching: a batch starts with the first record that arrives (waiting up to ``poll_timeout_s`` per
        poll) and is handed off as soon as it holds ``batch_size`` records, or nothing more arrived for
        ``batch_idle_s`` (records already fetched are taken at once: under load batches fill up, a paced stream
        is handed off within milliseconds), or it is ``batch_timeout_s`` old. ``batch_idle_s=None`` gathers
        until the size or the age is reached (file sinks: the age is their rotation interval).

        ``on_assigned``/``on_revoked`` see (topic, partition) lists at each rebalance (an exception from
        ``on_assigned`` is logged, never fails the rebalance); ``on_poll`` sees the record count of every poll.

        ``transactions`` (exactly once, ``services.common.source_offsets``): each batch is handled inside a
        transaction of ``producer`` that also writes the batch's source positions, and assigned partitions start at
        the positions read back; the group's offsets are still committed after each transaction, for lag only."""
        self.consumer = Consumer({**config, "on_commit": self._on_commit}, logger=log)
        self.topics = list(topics)
        self.group = str(config.get("group.id", ""))
        self.handler = handler
        self.shutdown = shutdown
        self.producer = producer
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_timeout_s = batch_timeout_s
        self.batch_idle_s = batch_idle_s
        self.poll_timeout_s = poll_timeout_s
        self.retry_backoff_s = retry_backoff_s
        self.max_retry_backoff_s = max_retry_backoff_s
        self.lag_interval_s = lag_interval_s
        self.flush_timeout_s = flush_timeout_s
        self.pause_while = pause_while
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.on_poll = on_poll
        self.transactions = transactions
        self._cooperative = config.get("partition.assignment.strategy") == "cooperative-sticky"
        self.assignment: set[tuple[str, int]] = set()
        self._revoked: set[tuple[str, int]] = set()  # revoked while the current batch was being gathered
        self._committed: dict[tuple[str, int], int] = {}  # the last offset sent for commit, per owned partition
        self.committed_batches = 0
        self.processed = 0
        self._failures_in_a_row = 0
        self._last_lag = 0.0
        self._tracer = tracing.tracer("freightline.consumer")

    # -- rebalance callbacks -----------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.transactions is not None:
            # Start where the last committed transaction left each partition (the group's offset otherwise).
            starts = self.transactions.assignment(partitions)
            if self._cooperative:
                consumer.incremental_assign(starts)
            else:
                consumer.assign(starts)
        self.assignment.update((p.topic, p.partition) for p in partitions)
        log.info("assigned %s", sorted(self.assignment))
        if self.on_assigned is not None:
            try:
                self.on_assigned([(p.topic, p.partition) for p in partitions])
            except Exception as error:
                log.warning("preparing assigned partitions failed: %s", error)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every batch is handled and its commit sent before the next poll, so nothing processed is left uncommitted;
        # a batch being gathered drops what it holds of these partitions (``_gather``).
        for p in partitions:
            self.assignment.discard((p.topic, p.partition))
            self._revoked.add((p.topic, p.partition))
            self._committed.pop((p.topic, p.partition), None)
        log.info("revoked %s", [(p.topic, p.partition) for p in partitions])
        if self.on_revoked is not None:
            self.on_revoked([(p.topic, p.partition) for p in partitions])

    # -- main loop --------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.transactions is not None:
            self.transactions.start()
        self.consumer.subscribe(
            self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        try:
            while not self.shutdown.requested:
                if self.pause_while is not None and self.pause_while():
                    self._paused_wait()
                    continue
                batch = self._usable(self._gather())
                if self.on_poll is not None:
                    self.on_poll(len(batch))
                if batch:
                    self.process(batch)
                else:
                    if self.producer is not None:
                        self.producer.poll(0)
                    self.commit_positions()
                self._report_lag()
        finally:
            self.close()

    def _gather(self) -> list[Message]:
        """The next batch (see ``__init__``): empty when nothing arrived within ``poll_timeout_s``.

        A batch gathers over several polls, and a rebalance served by one of them may revoke partitions whose
        records the batch already holds: those are dropped (``_without_revoked``), since the partitions' new owner
        reads them from the committed offset; handling them here too would write them twice and commit offsets of
        partitions this consumer no longer owns."""
        consumer = self.consumer
        self._revoked.clear()
        first = consumer.poll(self.poll_timeout_s)
        if first is None:
            return []
        messages = self._without_revoked([first])
        size, idle = self.batch_size, self.batch_idle_s
        deadline = time.monotonic() + self.batch_timeout_s
        while messages and len(messages) < size and not self.shutdown.requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if idle is None:
                messages += consumer.consume(size - len(messages), min(remaining, self.poll_timeout_s))
                messages = self._without_revoked(messages)
                continue
            more = consumer.consume(size - len(messages), 0)
            if not more and idle > 0:
                more = consumer.consume(size - len(messages), min(idle, remaining))
            messages += more
            messages = self._without_revoked(messages)  # also when nothing came: the poll may have revoked
            if not more:
                break
        return messages

    def _without_revoked(self, messages: list[Message]) -> list[Message]:
        """``messages`` without those of partitions revoked during the polls so far (records fetched after a
        partition came back are kept: they were read again from its committed offset)."""
        if not self._revoked:
            return messages
        revoked, self._revoked = self._revoked, set()
        kept = [m for m in messages if (m.topic(), m.partition()) not in revoked]
        log.info("dropped %d gathered records of revoked partitions %s", len(messages) - len(kept), sorted(revoked))
        return kept

    def _paused_wait(self) -> None:
        """Backpressure: keep the group membership alive without fetching while the target is down."""
        assigned = self.consumer.assignment()
        if assigned:
            self.consumer.pause(assigned)
        while not self.shutdown.requested and self.pause_while is not None and self.pause_while():
            self.consumer.poll(0.5)  # serves rebalances and heartbeats; paused partitions return nothing
        assigned = self.consumer.assignment()
        if assigned:
            self.consumer.resume(assigned)

    def _usable(self, messages: Iterable[Message]) -> list[Message]:
        batch = []
        for message in messages:
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                continue
            elif error.fatal():
                raise KafkaException(error)
            else:
                log.warning("consumer error: %s", error)
                if self.metrics is not None:
                    self.metrics.error("consumer")
        return batch

    def process(self, batch: list[Message]) -> bool:
        """Handle, make durable and commit one batch; on failure rewind it. Returns True when committed."""
        if tracing.active():
            return self._process_traced(batch)
        return self._process(batch)

    def _process_traced(self, batch: list[Message]) -> bool:
        """``_process`` inside a ``process batch`` span, and a ``process <topic>`` span for each record that
        arrived in a sampled trace: the record's headers now carry that span (``tracing.record_span``), so what
        the handler makes of the record continues its trace. The spans end when the batch is committed or
        rewound (then with an error status)."""
        spans: list[trace.Span] = []
        links: list[trace.Link] = []
        service = self.metrics.service if self.metrics is not None else self.group
        for message in batch:
            headers = message.headers()
            if not headers:
                continue
            traced = tracing.record_span(
                self._tracer,
                f"process {message.topic()}",
                headers_of(message),
                {
                    "messaging.system": "kafka",
                    "messaging.source.name": message.topic() or "",
                    "messaging.consumer.group.name": self.group,
                    "messaging.kafka.partition": message.partition() or 0,
                    "messaging.kafka.offset": message.offset() or 0,
                    "freightline.service": service,
                },
            )
            if traced is not None:
                span, headers_now = traced
                carried: list[tuple[str, str | bytes | None]] = list(headers_now)
                message.set_headers(carried)
                spans.append(span)
                if len(links) < MAX_BATCH_LINKS:
                    links.append(trace.Link(span.get_span_context()))
        committed = False
        try:
            with self._tracer.start_as_current_span("process batch", links=links) as batch_span:
                batch_span.set_attribute("messaging.batch.message_count", len(batch))
                committed = self._process(batch)
        finally:
            for span in spans:
                if not committed:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, "batch not committed (it is replayed)"))
                span.end()
        return committed

    def _process(self, batch: list[Message]) -> bool:
        started = time.monotonic()
        offsets = self._next_offsets(batch)
        transactions = self.transactions
        try:
            if transactions is not None:
                transactions.begin()
            self.handler(batch)
            if transactions is not None:
                transactions.commit(offsets)
            elif self.producer is not None:
                self.producer.flush(self.flush_timeout_s)
        except Exception as error:
            if transactions is not None:
                transactions.abort()
            self._rewind(batch, error)
            return False
        try:
            self._commit(offsets)
            self._committed.update(((tp.topic, tp.partition), tp.offset) for tp in offsets)
        except KafkaException as error:
            # A failed commit (e.g. a rebalance took the partition) only means a replay later: the
            # outputs are durable and consumers downstream are idempotent.
            log.warning("commit failed, the batch may be replayed: %s", error)
            if self.metrics is not None:
                self.metrics.commits.labels(self.metrics.service, "error").inc()
            return False
        self._failures_in_a_row = 0
        self.committed_batches += 1
        self.processed += len(batch)
        if self.metrics is not None:
            self._observe(batch, time.monotonic() - started)
        return True

    def _observe(self, batch: list[Message], elapsed: float) -> None:
        """Per batch: its processing latency, and the ingest age (record timestamp to now) of a sample of it."""
        metrics = self.metrics
        assert metrics is not None
        now_ms = time.time() * 1000
        stamps: dict[str, list[float]] = defaultdict(list)
        for message in batch[:: max(len(batch) // AGE_SAMPLE, 1)]:
            kind, stamp = message.timestamp()
            if kind != TIMESTAMP_NOT_AVAILABLE:
                stamps[message.topic() or "?"].append(max(now_ms - stamp, 0.0) / 1000.0)
        for topic in {message.topic() or "?" for message in batch}:
            metrics.processing_latency.labels(metrics.service, topic).observe(elapsed)
        for topic, ages in stamps.items():
            metrics.ingest_age.labels(metrics.service, topic).observe_many(ages)

    @staticmethod
    def _next_offsets(batch: list[Message]) -> list[TopicPartition]:
        highest: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic() or "", message.partition() or 0)
            highest[key] = max(highest.get(key, -1), message.offset() or 0)
        return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]

    def commit_positions(self) -> None:
        """Between batches (a poll returned nothing): commit the consumer's position of each owned partition where
        it moved past the last offset committed, i.e. past transaction markers (control records, never handed to
        the application, that follow a transaction's last record: committing that record's offset + 1 would
        leave a lag of 1). Nothing is held then: every record returned was handled and its commit sent, or its
        batch rewound (a seek, which moves the position back), so the position never passes an unprocessed
        record. A partition's first comparison is with the group's committed offset (asked once per assignment),
        so a newly assigned partition is not committed again where its previous owner left it."""
        if not self.assignment:
            return
        try:
            unknown = [TopicPartition(t, p) for t, p in self.assignment if (t, p) not in self._committed]
            if unknown:  # newly assigned: the group's committed offsets (once per assignment, while idle)
                for tp in self.consumer.committed(unknown, timeout=self.poll_timeout_s):
                    if tp.error is None:
                        self._committed[(tp.topic, tp.partition)] = tp.offset
            known = [TopicPartition(t, p) for t, p in self.assignment if (t, p) in self._committed]
            positions = self.consumer.position(known) if known else []
        except KafkaException as error:
            log.debug("position lookup failed: %s", error)
            return
        committed = self._committed
        moved = [
            tp
            for tp in positions
            if tp.error is None and tp.offset >= 0 and tp.offset > committed.get((tp.topic, tp.partition), tp.offset)
        ]
        if not moved:
            return
        try:
            self._commit(moved)
        except KafkaException as error:
            log.warning("committing positions past transaction markers failed: %s", error)
            return
        self._committed.update(((tp.topic, tp.partition), tp.offset) for tp in moved)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        """Commit the batch's next offsets.

        The commit is sent asynchronously (its outcome arrives in ``_on_commit``): the batch's outputs are already
        durable, so a commit that fails only means a replay, and the loop never blocks while the group
        coordinator is unreachable (it keeps polling, serving errors, statistics and rebalances). Commits are
        sent in order and ``close`` waits for those still in flight.
        """
        for attempt in Retrying(
            retry=retry_if_exception_type(KafkaException),
            wait=wait_exponential(multiplier=0.2, max=2),
            stop=stop_after_delay(10),
            reraise=True,
        ):
            with attempt:
                self.consumer.commit(offsets=offsets, asynchronous=True)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        failed = error is not None or any(p.error is not None for p in partitions)
        if failed:
            log.warning("offset commit failed (records will be replayed): %s", error or partitions)
        if self.metrics is not None:
            self.metrics.commits.labels(self.metrics.service, "error" if failed else "ok").inc()
            if not failed:
                self.metrics.last_commit.labels(self.metrics.service, self.group).set(time.time())

    def _rewind(self, batch: list[Message], error: Exception) -> None:
        self._failures_in_a_row += 1
        backoff = min(self.retry_backoff_s * 2 ** (self._failures_in_a_row - 1), self.max_retry_backoff_s)
        log.warning(
            "batch of %d failed (%s: %s); rewinding and retrying in %.1fs",
            len(batch),
            type(error).__name__,
            error,
            backoff,
        )
        if self.metrics is not None:
            self.metrics.error(type(error).__name__)
            for message in batch:
                self.metrics.record_in(message.topic() or "?", "retried")
        first: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic() or "", message.partition() or 0)
            first[key] = min(first.get(key, 1 << 62), message.offset() or 0)
        for (topic, partition), offset in first.items():
            if (topic, partition) in self.assignment:
                try:
                    self.consumer.seek(TopicPartition(topic, partition, offset))
                except KafkaException as seek_error:
                    log.warning("seek %s[%d] failed: %s", topic, partition, seek_error)
        self.shutdown.wait(backoff)

    def _report_lag(self) -> None:
        """Consumer lag from the high watermarks the fetch responses carry (no broker round trip: a fresh
        ListOffsets request queues behind the long-polling fetch and stalls the loop for up to a fetch wait)."""
        if self.metrics is None or time.monotonic() - self._last_lag < self.lag_interval_s:
            return
        self._last_lag = time.monotonic()
        assigned = self.consumer.assignment()
        if not assigned:
            return
        try:
            for tp in self.consumer.position(assigned):
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    continue  # no fetch response yet
                position = tp.offset if tp.offset >= 0 else 0
                self.metrics.consumer_lag.labels(self.metrics.service, self.group, tp.topic, str(tp.partition)).set(
                    max(high - position, 0)
                )
        except KafkaException as error:
            log.debug("lag probe failed: %s", error)

    def close(self) -> None:
        try:
            if self.producer is not None:
                self.producer.flush(self.flush_timeout_s)
        finally:
            self.consumer.close()


def read_topic(
    env: Mapping[str, str], topic: str, *, timeout_s: float = 60.0, start: Mapping[int, int] | None = None
) -> Iterator[tuple[bytes | None, bytes | None, int]]:
    """Every record of ``topic`` up to the end offsets it has now: (key, value, timestamp ms), committed records
    only (``read_committed``, the consumers' default); ``start`` gives the first offset per partition (default: the
    log start)."""
    consumer = Consumer(
        {
            **KafkaSettings.from_mapping(env).client_config(),
            "group.id": "freightline-inspect",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return
        ends: dict[int, int] = {}
        assignment = []
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            low = max(low, (start or {}).get(partition, low))
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, low))
        if not assignment:
            return
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                partition = message.partition() or 0
                offset = message.offset() or 0
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"reading {topic}: {error}")
                    # at the end: a transactional topic's last offsets are markers, never delivered as records
                    if partition in ends and offset >= ends[partition]:
                        del ends[partition]
                    continue
                if partition in ends and offset < ends[partition]:
                    yield message.key(), message.value(), message.timestamp()[1]
                    if offset + 1 >= ends[partition]:
                        del ends[partition]
    finally:
        consumer.close()


def end_positions(env: Mapping[str, str], topics: Sequence[str]) -> dict[str, dict[int, int]]:
    """High watermark per partition of each topic (to read only what comes after, with ``start``)."""
    consumer = Consumer({**KafkaSettings.from_mapping(env).client_config(), "group.id": "freightline-inspect"})
    try:
        positions: dict[str, dict[int, int]] = {}
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            partitions = [] if metadata is None or metadata.error is not None else sorted(metadata.partitions)
            positions[topic] = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
            }
        return positions
    finally:
        consumer.close()


def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[tuple[str, int, dict[str, str]]],
    timeout: float = 30.0,
) -> None:
    """Create topics (name, partitions, configs) that do not exist yet; existing ones are left alone.

    Replication factor and ``min.insync.replicas`` come from the cluster's settings (``replication``), so a
    production cluster differs only in settings; a topic's own ``min.insync.replicas`` (catalogue) wins.
    """
    admin = AdminClient(dict(settings.client_config()))
    replicas, min_insync = settings.replication()
    wanted = list(topics)
    existing = set(admin.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replicas,
            config={"min.insync.replicas": str(min_insync), **configs},
        )
        for name, partitions, configs in wanted
        if name not in existing
    ]
    if not new:
        return
    for topic, future in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created topic %s", topic)
