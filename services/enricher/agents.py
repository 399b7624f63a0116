"""The enricher's Faust agents: one per event family, plus the commit watchdog and table-size timers.

Delivery guarantee (at least once, nothing committed before its output is durable):

- every agent runs with ``concurrency=1``, so a partition's events are handled in offset order by one task;
- an agent takes a batch (``take_events``), produces every enriched record and dead letter through the
  service's idempotent ``acks=all`` producer (librdkafka, :class:`services.common.kafka.Producer`) and waits
  for the delivery report of each of them; failed deliveries are produced again, and when they keep failing the
  process exits without committing;
- only then are the batch's events acknowledged to Faust, which commits offsets of acknowledged events only,
  contiguously; each event holds an extra reference while its batch is in flight, so an agent cancelled
  mid-batch (shutdown, crash) never acknowledges it;
- the commit watchdog catches commits that silently stop (see :mod:`services.enricher.app`).

A crash replays the uncommitted tail; enriched event ids are derived from the source ids, so consumers
deduplicate replays on ``metadata.event_id``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message
from faust.types import EventT

from services.common.deadletter import ERROR_TYPE_HEADER, dead_letter_topic, envelope
from services.common.serde import SerdeError
from services.enricher import join
from services.enricher.app import EXIT_COMMIT_STALL, EXIT_DELIVERY_FAILED, EXIT_OFFSET_GAP, Enricher

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 180.0


class MessageView:
    """A Faust message seen through the confluent-kafka ``Message`` methods that ``envelope`` reads."""

    def __init__(self, message: Any) -> None:
        self._message = message

    def key(self) -> bytes | None:
        key = self._message.key
        return key.encode() if isinstance(key, str) else key

    def value(self) -> bytes | None:
        value = self._message.value
        return value if isinstance(value, bytes | None) else bytes(value)

    def headers(self) -> list[tuple[str, bytes]]:
        return _headers(self._message) or []

    def topic(self) -> str:
        return str(self._message.topic)

    def partition(self) -> int:
        return int(self._message.partition)

    def offset(self) -> int:
        return int(self._message.offset)

    def timestamp(self) -> tuple[int, int]:
        timestamp = self._message.timestamp
        return (1, int(timestamp * 1000)) if timestamp else (0, -1)


def _headers(message: Any) -> list[tuple[str, bytes]] | None:
    headers = message.headers
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k, v) for k, v in items]


@dataclass(slots=True)
class Output:
    """One record to produce: topic, key, value, headers, timestamp (ms)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None
    timestamp: int | None


class BatchDelivery:
    """Delivery reports of one batch's records, resolved on the event loop when all of them arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop, outputs: Sequence[Output]) -> None:
        self.loop = loop
        self.outputs = outputs
        self.remaining = len(outputs)
        self.failed: list[tuple[int, KafkaError]] = []
        self.done: asyncio.Future[None] = loop.create_future()
        self._lock = threading.Lock()
        if not outputs:
            self.done.set_result(None)

    def callback(self, index: int) -> Any:
        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            with self._lock:
                if error is not None:
                    self.failed.append((index, error))
                self.remaining -= 1
                finished = self.remaining == 0
            if finished:
                self.loop.call_soon_threadsafe(self._finish)

        return on_delivery

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class Processor:
    """Batch handling shared by the agents (kept apart from the decorators so that it is testable)."""

    def __init__(self, enricher: Enricher) -> None:
        self.enricher = enricher
        self.settings = enricher.settings
        self.metrics = enricher.enricher_metrics
        self.base = enricher.metrics
        self.retries = enricher.settings.delivery_retries

    # -- dead letters ----------------------------------------------------------------------------------------
    def dead_letter(self, message: Any, error: BaseException, error_type: str | None = None) -> Output:
        topic_name = str(message.topic)
        view = MessageView(message)
        record = envelope(view, error, service=self.settings.producer_name, error_type=error_type)  # type: ignore[arg-type]
        value = self.enricher.dead_letter_encoders[topic_name].encode(record)
        log.warning(
            "dead-lettering %s[%d]@%d: %s: %s",
            topic_name,
            message.partition,
            message.offset,
            record["error_type"],
            record["error_message"][:200],
        )
        self.base.dead_letters.labels(self.base.service, topic_name, record["error_type"]).inc()
        self.base.record_in(topic_name, "dead_lettered")
        headers = [(ERROR_TYPE_HEADER, record["error_type"].encode())]
        return Output(dead_letter_topic(topic_name), view.key(), value, headers, None)

    # -- delivery --------------------------------------------------------------------------------------------
    async def deliver(self, outputs: Sequence[Output]) -> None:
        """Produce everything and wait for every delivery report; retry failures, exit when they persist."""
        loop = asyncio.get_running_loop()
        producer = self.enricher.producer
        pending = list(outputs)
        attempt = 0
        while pending:
            delivery = BatchDelivery(loop, pending)
            for index, output in enumerate(pending):
                producer.produce(
                    output.topic,
                    output.value,
                    output.key,
                    headers=output.headers,
                    timestamp=output.timestamp,
                    on_delivery=delivery.callback(index),
                )
            try:
                await asyncio.wait_for(asyncio.shield(delivery.done), DELIVERY_TIMEOUT_S)
            except TimeoutError:
                self.enricher.fatal(f"no delivery report within {DELIVERY_TIMEOUT_S}s", EXIT_DELIVERY_FAILED)
            if not delivery.failed:
                return
            attempt += 1
            self.base.error("delivery")
            first = delivery.failed[0][1]
            if attempt > self.retries:
                self.enricher.fatal(
                    f"{len(delivery.failed)} outputs not delivered after {attempt} attempts: {first}",
                    EXIT_DELIVERY_FAILED,
                )
            log.warning(
                "%d outputs not delivered (%s); producing them again (attempt %d)", len(delivery.failed), first, attempt
            )
            await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 10.0))
            pending = [pending[index] for index, _ in sorted(delivery.failed)]

    # -- events ----------------------------------------------------------------------------------------------
    async def enrich_batch(self, kind: str, events: Sequence[EventT]) -> None:
        enricher = self.enricher
        encoder = enricher.output_encoders[kind]
        output_name = enricher.settings.output(kind)
        decode = enricher.decoder.decode
        lookups = enricher.lookups
        producer_name = self.settings.producer_name
        geo = enricher.geo if kind == join.PRODUCT_VIEWS else None
        now_ms = int(time.time() * 1000)
        outputs: list[Output] = []
        event_times: list[int] = []
        unknown: Counter[str] = Counter()
        countries: Counter[str] = Counter()
        source_name = enricher.settings.source(kind)
        for event in events:
            message = event.message
            try:
                record = decode(message.value)
                result = join.enrich(kind, record, lookups, now_ms, producer_name)
                value = encoder.encode(result.record)
            except SerdeError as error:
                outputs.append(self.dead_letter(message, error, error.kind))
                continue
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                outputs.append(self.dead_letter(message, error, "invalid_record"))
                continue
            if result.unknown:
                unknown.update(result.unknown)
            if geo is not None:
                countries[geo.country(record.get("remote_ip")) or "unknown"] += 1
            event_time = join._millis(record["metadata"]["event_time"])
            event_times.append(event_time)
            outputs.append(Output(output_name, result.key.encode(), value, _headers(message), event_time))
        await self.deliver(outputs)
        delivered_ms = time.time() * 1000
        metrics = self.metrics
        metrics.enriched.labels(output_name).inc(len(event_times))
        metrics.batch_size.observe(len(events))
        self.base.record_in(source_name, "ok", len(event_times))
        latency = metrics.latency.labels(output_name)
        age = self.base.event_age.labels(self.base.service, source_name)
        for event_time in event_times:
            seconds = max(delivered_ms - event_time, 0.0) / 1000.0
            latency.observe(seconds)
            age.observe(seconds)
        for ref_kind, count in unknown.items():
            metrics.unknown.labels(ref_kind).inc(count)
        for country, count in countries.items():
            metrics.geo.labels(country).inc(count)


def check_offsets(next_offsets: dict[tuple[str, int], int], events: Sequence[EventT]) -> str | None:
    """Advance the expected next offset per partition; describe the first gap (records never delivered).

    The source topics are neither compacted nor transactional, so offsets arrive contiguously. Faust can skip
    records it fetched while partitions were paused for table recovery; a gap means exactly that.
    """
    for event in events:
        message = event.message
        key = (str(message.topic), int(message.partition))
        offset = int(message.offset)
        expected = next_offsets.get(key)
        if expected is not None and offset > expected:
            return f"{key[0]}[{key[1]}]: got offset {offset}, expected {expected}"
        if expected is None or offset + 1 > expected:
            next_offsets[key] = offset + 1
    return None


def _hold(events: Sequence[EventT]) -> None:
    """Keep the batch's events unacknowledged until :func:`_release` (survives cancellation of the agent)."""
    for event in events:
        event.message.incref()


def _release(events: Sequence[EventT]) -> None:
    for event in events:
        event.message.decref()


def register(enricher: Enricher) -> None:
    """Declare the agents and background tasks of ``enricher`` on its Faust app."""
    app = enricher.app
    processor = Processor(enricher)
    settings = enricher.settings

    def event_agent(kind: str) -> None:
        async def enrich_events(stream: Any) -> None:
            async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
                _hold(events)
                gap = check_offsets(enricher.next_offsets, events)
                if gap is not None:
                    # Exit before anything past the hole is acknowledged: the restart re-reads from the
                    # committed offset, so the skipped records are processed, never lost.
                    enricher.fatal(f"records skipped by the consumer ({gap})", EXIT_OFFSET_GAP)
                await processor.enrich_batch(kind, events)
                for event in events:
                    message = event.message
                    enricher.watchdog.acknowledged(str(message.topic), int(message.partition), message.offset + 1)
                _release(events)  # take_events acknowledges the batch when this iteration ends

        enrich_events.__name__ = enrich_events.__qualname__ = f"enrich_{kind}"
        app.agent(enricher.sources[kind], name=f"enrich_{kind}", concurrency=1)(enrich_events)

    for kind in join.EVENT_KINDS:
        event_agent(kind)

    @app.timer(interval=max(min(settings.commit_stall_s / 4, 15.0), 1.0))
    async def commit_watchdog() -> None:
        healthy = await asyncio.to_thread(enricher.watchdog.check)
        if not healthy and settings.exit_on_commit_stall:
            enricher.fatal("offset commits stalled", EXIT_COMMIT_STALL)

    @app.timer(interval=5.0)
    async def table_sizes() -> None:
        for kind, table in enricher.tables.items():
            enricher.enricher_metrics.reference_entries.labels(kind).set(len(table))
