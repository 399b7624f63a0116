"""The enricher's Faust agent, and the source loop that feeds it batches.

Delivery guarantee (at least once, nothing committed before its output is durable):

- the source topics are consumed in batches by the shared :class:`services.common.kafka.ConsumerLoop`
  (confluent-kafka) in a thread beside Faust's event loop; it starts once the reference tables are read to the
  end of their topics (:mod:`services.enricher.reference`), so no event is enriched before its references are
  loaded;
- each batch is handed to the ``enrich`` agent (``concurrency=1``) through an in-memory Faust channel; the agent
  decodes, joins with the reference tables (filled by the reference reader's thread), encodes, and hands the
  outputs back (undecodable or invalid records become dead letters with the original bytes);
- back in the loop thread the outputs are produced through the idempotent ``acks=all`` producer and flushed:
  only when every delivery succeeded does the loop commit the batch's offsets; a failed delivery or a batch the
  agent did not answer rewinds the batch and retries it.

A crash replays the uncommitted tail; enriched event ids are derived from the source ids, so consumers
deduplicate replays on ``metadata.event_id``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import Message

from services.common.deadletter import ERROR_TYPE_HEADER, UNPROCESSABLE, dead_letter_topic, envelope
from services.common.kafka import headers_of
from services.enricher import join

if TYPE_CHECKING:  # annotations only: app.py builds the enricher and registers these agents on it
    from services.enricher.app import Enricher

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Output:
    """One record to produce: topic, key, value, headers, timestamp (ms)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None
    timestamp: int | None


@dataclass
class Enrichment:
    """What the agent made of one batch: outputs in input order, and what the metrics need."""

    outputs: list[Output] = field(default_factory=list)
    event_times: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # by event kind
    unknown: Counter[str] = field(default_factory=Counter)
    countries: Counter[str] = field(default_factory=Counter)


@dataclass
class Job:
    """A batch on its way to the agent, and the future its enrichment comes back through."""

    messages: Sequence[Message]
    result: concurrent.futures.Future[Enrichment] = field(default_factory=concurrent.futures.Future)


class Processor:
    """The work on both sides of the channel (kept apart from the decorators so that it is testable)."""

    def __init__(self, enricher: Enricher) -> None:
        self.enricher = enricher
        self.settings = enricher.settings
        self.metrics = enricher.enricher_metrics
        self.base = enricher.metrics
        self.kinds = {enricher.settings.source(kind): kind for kind in join.EVENT_KINDS}

    # -- on the event loop (the agent) -----------------------------------------------------------------------
    def dead_letter(self, message: Message, error: Exception, error_type: str | None = None) -> Output:
        topic_name = message.topic() or ""
        record = envelope(message, error, service=self.settings.producer_name, error_type=error_type)
        value = self.enricher.dead_letter_encoders[topic_name].encode(record)
        log.warning(
            "dead-lettering %s[%d]@%d: %s: %s",
            topic_name,
            message.partition(),
            message.offset(),
            record["error_type"],
            record["error_message"][:200],
        )
        self.base.dead_letters.labels(self.base.service, topic_name, record["error_type"]).inc()
        self.base.record_in(topic_name, "dead_lettered")
        headers = [(ERROR_TYPE_HEADER, record["error_type"].encode())]
        return Output(dead_letter_topic(topic_name), message.key(), value, headers, None)

    def enrich(self, messages: Sequence[Message]) -> Enrichment:
        """Decode, join and encode a batch (any mix of source topics), in input order."""
        enricher = self.enricher
        decode = enricher.decoder.decode
        lookups = enricher.lookups
        producer_name = self.settings.producer_name
        geo = enricher.geo
        now_ms = int(time.time() * 1000)
        outputs_by_kind = enricher.outputs
        encoders = enricher.output_encoders
        done = Enrichment()
        outputs = done.outputs
        for message in messages:
            source = message.topic() or ""
            kind = self.kinds[source]
            try:
                payload = message.value() or b""
                record = decode(payload)
                result = join.enrich(kind, record, lookups, now_ms, producer_name)
                value = encoders[kind].encode(result.record, payload)
            except UNPROCESSABLE as error:
                outputs.append(self.dead_letter(message, error))
                continue
            if result.unknown:
                done.unknown.update(result.unknown)
            if kind == join.PRODUCT_VIEWS:
                done.countries[geo.country(record.get("remote_ip")) or "unknown"] += 1
            event_time = join._millis(record["metadata"]["event_time"])
            done.event_times[kind].append(event_time)
            headers = [(k, v) for k, v in headers_of(message) if v is not None] or None
            outputs.append(Output(outputs_by_kind[kind], result.key.encode(), value, headers, event_time))
        return done

    # -- in the source loop's thread -------------------------------------------------------------------------
    def handle(self, batch: list[Message]) -> None:
        """The source loop's handler: enrich on the agent, then produce, flush and account for the outputs.

        Raising (no answer from the agent, a failed delivery) makes the loop rewind the batch and retry it.
        """
        loop = self.enricher.loop
        if loop is None:
            raise RuntimeError("the Faust event loop is not running")
        job = Job(batch)
        asyncio.run_coroutine_threadsafe(self.enricher.jobs.put(job), loop).result(self.settings.agent_timeout_s)
        enrichment = job.result.result(self.settings.agent_timeout_s)
        self.deliver(enrichment)

    def deliver(self, enrichment: Enrichment) -> None:
        producer = self.enricher.producer
        for record in enrichment.outputs:
            producer.produce(record.topic, record.value, record.key, headers=record.headers, timestamp=record.timestamp)
        producer.flush(self.settings.flush_timeout_s)  # raises DeliveryError: the loop rewinds and retries
        delivered_ms = time.time() * 1000
        metrics = self.metrics
        metrics.batch_size.observe(len(enrichment.outputs))
        for kind, event_times in enrichment.event_times.items():
            source, output = self.settings.source(kind), self.settings.output(kind)
            self.base.record_in(source, "ok", len(event_times))
            metrics.enriched.labels(output).inc(len(event_times))
            ages = [max(delivered_ms - event_time, 0.0) / 1000.0 for event_time in event_times]
            metrics.latency.labels(output).observe_many(ages)
            self.base.event_age.labels(self.base.service, source).observe_many(ages)
        for ref_kind, count in enrichment.unknown.items():
            metrics.unknown.labels(ref_kind).inc(count)
        for country, count in enrichment.countries.items():
            metrics.geo.labels(country).inc(count)


def register(enricher: Enricher) -> Processor:
    """Declare the agent, the source loop's start and the timers of ``enricher`` on its Faust app."""
    app = enricher.app
    processor = Processor(enricher)

    async def enrich(stream: Any) -> None:
        async for job in stream:
            if not job.result.set_running_or_notify_cancel():
                continue
            try:
                job.result.set_result(processor.enrich(job.messages))
            except asyncio.CancelledError:
                # The agent is being stopped mid-batch: the source loop rewinds the batch, then the stop goes on.
                job.result.set_exception(RuntimeError("the enrich agent was stopped mid-batch"))
                raise
            except Exception as error:  # handed to the source loop, which rewinds the batch
                job.result.set_exception(error)

    app.agent(enricher.jobs, name="enrich", concurrency=1)(enrich)

    @app.task
    async def start_sources() -> None:
        # Reference tables first: every reference topic is read to its end before the first event is enriched.
        await asyncio.to_thread(enricher.recover_references)
        # Faust's stream queues start suspended until its own consumer resumes them; with Faust's Kafka clients
        # off (``EnricherBoot``), the agent's channel is opened here.
        enricher.app.flow_control.resume()
        enricher.start_sources(asyncio.get_running_loop(), processor.handle)

    @app.timer(interval=5.0)
    async def table_sizes() -> None:
        for kind, table in enricher.tables.items():
            enricher.enricher_metrics.reference_entries.labels(kind).set(len(table))

    return processor
