"""Running a windowed job for one test: its own topics, table and settings, events in, and the checks of both
outputs (committed Kafka records, PostgreSQL rows) against an oracle's windows, every field of every window."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import fastavro
import httpx
import psycopg

from deploy import flink_jobs
from schemas.catalogue import load_catalogue, schema_text
from services.common.kafka import Producer, producer_config
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from stream_processors.flink_sql import WindowJob
from stream_processors.oracle import EPOCH, Windows, read_committed
from tests.integration.crash import group_lag
from tests.integration.sinks.helpers import wait_for


def parsed_schema(text: str) -> Any:
    return fastavro.parse_schema(json.loads(text))


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=dt.UTC) if isinstance(value, dt.datetime) else value


class JobRun:
    """One job's topics (a one-partition source unless ``source_partitions``: see ``test_product_views``), table and
    settings."""

    def __init__(
        self,
        job: WindowJob,
        prefix: str,
        stack_env: dict[str, str],
        rest_url: str,
        new_topic: Callable[..., str],
        unique_name: Callable[[str], str],
        bound: dt.timedelta,
        source_partitions: int = 1,
    ) -> None:
        self.job, self.env, self.rest_url = job, stack_env, rest_url
        self.source = new_topic(f"{job.name}-src", partitions=source_partitions)
        self.sink = new_topic(f"{job.name}-agg")
        self.late = new_topic(f"{job.name}-late")
        self.table = f"streaming.{unique_name('w').replace('-', '_')}"
        self.settings = {
            f"{prefix}SOURCE_TOPIC": self.source,
            f"{prefix}SINK_TOPIC": self.sink,
            f"{prefix}LATE_TOPIC": self.late,
            f"{prefix}POSTGRES_TABLE": self.table,
            f"{prefix}GROUP_ID": unique_name(job.name),
            f"{prefix}MAX_OUT_OF_ORDERNESS_MS": str(int(bound.total_seconds() * 1000)),
            f"{prefix}CHECKPOINT_INTERVAL_MS": "1000",
            f"{prefix}IDLE_TIMEOUT_MS": "1000",
        }
        self.group = self.settings[f"{prefix}GROUP_ID"]

    def produce(self, records: Sequence[Mapping[str, Any]], partition: int | None = None) -> None:
        """Produce source records in order, keyed by their event id, with the source contract's schema (all to
        ``partition`` if given)."""
        produce_source(self.env, self.job, self.source, records, partition)

    def postgres_rows(self) -> Windows:
        key = [*self.job.key, "window_start"]
        columns = [column.name for column in self.job.warehouse]
        with psycopg.connect(self.env["POSTGRES_DSN"]) as conn:
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {self.table}").fetchall()
        result: Windows = {}
        for row in rows:
            values = {name: _utc(value) for name, value in zip(columns, row, strict=True)}
            result[tuple(values[name] for name in key)] = values
        return result

    def wait_for_window_end(self, end: dt.datetime) -> None:
        """Windows fire in event-time order: once one ending at ``end`` is written, every earlier one has fired."""
        wait_for(
            lambda: any(row["window_end"] == end for row in self.postgres_rows().values()),
            timeout=300,
            what=f"a window ending at {end} in PostgreSQL",
        )

    def wait_until_read(self) -> None:
        """Until the job has read every source record and committed a checkpoint after it (so its outputs of them
        are committed too): the group's offsets, which Flink commits at checkpoints, reach the end."""
        client = {"bootstrap.servers": self.env["KAFKA_BOOTSTRAP_SERVERS"]}
        wait_for(lambda: group_lag(client, self.group, [self.source]) == 0, timeout=300, what="the job's group lag 0")

    def check_late_seen(self, job_id: str, count: int) -> None:
        """Once the job has read everything (``wait_until_read``), its late-event counter as the stack's Prometheus
        scrapes it from the TaskManager is ``count``."""
        seen = flink_jobs.late_events_seen(self.env["PROMETHEUS_URL"], job_id, [self.job.name], time.time())
        assert seen == {self.job.name: count}

    def late_events(self) -> list[dict[str, Any]]:
        """The committed late-event records, checked for key and ingest time, without the ingest time."""
        records = read_committed(self.env, self.late)
        for key, value in records:
            assert key == value["job"] == self.job.name
            assert value["metadata"].pop("ingest_time") >= value["watermark"]
        return [value for _, value in records]

    def check_late(self, late: Sequence[Mapping[str, Any]], window_key: Callable[[Mapping[str, Any]], str]) -> None:
        """The committed late-event records are ``late`` (source events produced after their windows had closed),
        in order, each with the last window it belonged to (``window_key`` of the event, start = its time floored
        to the job's slide) and a watermark at or past that window's end."""
        slide, size = dt.timedelta(minutes=self.job.slide), dt.timedelta(minutes=self.job.window_minutes)
        expected = []
        for event in late:
            time = event["metadata"]["event_time"]
            start = EPOCH + ((time - EPOCH) // slide) * slide
            envelope = {
                "event_id": uuid.UUID(str(event["metadata"]["event_id"])),
                "event_time": time,
                "producer": self.job.producer,
                "trace_context": None,
            }
            expected.append(
                {
                    "metadata": envelope,
                    "job": self.job.name,
                    "source_topic": self.source,
                    "window_key": window_key(event),
                    "window_start": start,
                    "window_end": start + size,
                }
            )
        reported = self.late_events()
        for record in reported:
            assert record["window_end"] <= record.pop("watermark")
        assert reported == expected

    def check(self, expected: Windows) -> None:
        """The committed Kafka output and the table equal ``expected`` (keyed by the job's key and window start)."""
        emitted: Windows = {}
        for key, value in read_committed(self.env, self.sink):
            window = (*(value[name] for name in self.job.key), value["window_start"])
            assert window not in emitted, f"window {window} emitted twice"
            assert key == value[self.job.key[0]]
            assert value["metadata"].pop("ingest_time") >= value["window_end"]
            emitted[window] = value
        assert emitted == expected

        columns = [column.name for column in self.job.warehouse]
        assert self.postgres_rows() == {
            window: {name: value[name] for name in columns} for window, value in expected.items()
        }

    def run_and_check(self, submit: Callable[[str, dict[str, str]], str], name: str, expected: Windows) -> None:
        """Submit job ``name`` with this run's settings, wait until its last expected window is written, stop it with
        a savepoint (which commits its last transaction) and check both outputs against ``expected``."""
        job_id = submit(name, self.settings)
        self.wait_for_window_end(max(window["window_end"] for window in expected.values()))
        flink_jobs.savepoint(self.rest_url, job_id, stop=True)
        self.check(expected)

    def run_late_and_check(
        self,
        submit: Callable[[str, dict[str, str]], str],
        name: str,
        expected: Windows,
        late_of: Sequence[Mapping[str, Any]],
        window_key: Callable[[Mapping[str, Any]], str],
        partition: int | None = None,
    ) -> None:
        """``run_and_check`` with late events: once the last expected window is written, copies of ``late_of`` (new
        event ids; their windows have all closed) are produced, the job reads them, its late-event counter in
        Prometheus counts them (``check_late_seen``), it is stopped with a savepoint, and both outputs are checked,
        then the late-event records (``check_late``)."""
        job_id = submit(name, self.settings)
        self.wait_for_window_end(max(window["window_end"] for window in expected.values()))
        late = [{**event, "metadata": {**event["metadata"], "event_id": str(uuid.uuid4())}} for event in late_of]
        self.produce(late, partition)
        self.wait_until_read()
        self.check_late_seen(job_id, len(late))
        flink_jobs.savepoint(self.rest_url, job_id, stop=True)
        self.check(expected)
        self.check_late(late, window_key)

    def registered_schema(self) -> Any:
        """The schema Flink's registry client registered for the output topic."""
        url = f"{self.env['SCHEMA_REGISTRY_URL']}/subjects/{self.sink}-value/versions/latest"
        return parsed_schema(httpx.get(url, timeout=10).json()["schema"])


def produce_source(
    env: Mapping[str, str],
    job: WindowJob,
    topic: str,
    records: Iterable[Mapping[str, Any]],
    partition: int | None = None,
    key: Callable[[Mapping[str, Any]], str] | None = None,
) -> None:
    """Produce ``records`` to ``topic`` in order, keyed by their event id (or ``key``), with ``job``'s source
    contract (all to ``partition`` if given)."""
    serde = AvroSerde(registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])))
    encoder = serde.encoder(subject_for(topic), schema_text(load_catalogue().topic(job.source_contract).value_schema))
    producer = Producer(producer_config(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"]), "flink-test"))
    for record in records:
        record_key = key(record) if key else str(record["metadata"]["event_id"])
        producer.produce(topic, encoder.encode(record), record_key, partition=partition)
    producer.flush(120)
