"""Offline evaluation of the anomaly detectors: the generator's events for a seed, in memory, fed to the pure
detection logic and scored against the generator's labels. No broker, no registry.

``python -m tests.evaluation.detection --seeds 1-10 --events 100000`` prints one row per seed and anomaly type
(labels, detections, incidents matched, precision, recall, detections per matched incident) and exits 1 when a
type misses the goal (precision and recall >= 0.9) on some seed.

Records go through the service's two stages (``services.anomaly_detector.topology``) in produce-time order:
each raw record on the partition its key hashes to (CRC32 of the key modulo the catalogue's partitions, like the
producer's default partitioner), re-keyed by stage 1 onto the repartition topic's partition of its entity key and
fed to that partition's detection task; product views are scored under their mirrored topic name.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.catalogue import Catalogue, load_catalogue
from services.anomaly_detector.score import match
from services.anomaly_detector.settings import DETECTOR_INPUT, INPUT_TOPICS, VIEWS, DetectorSettings
from services.anomaly_detector.topology import Tasks, detector_input
from services.generator.engine import Engine
from services.generator.records import ANOMALY_LABELS, PRODUCT_VIEWS
from services.generator.settings import GeneratorSettings

GOAL = 0.9
CHUNK = 4_096
TYPES = ("PRODUCT_VIEW_SPIKE", "SHIPMENT_DELAY_SURGE", "ERROR_RATE_SPIKE", "OTHER")


@dataclass
class Outcome:
    """One seed's labels, detections and score per anomaly type."""

    seed: int
    start_ms: int
    events: int
    labels: list[dict[str, Any]] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)
    per_type: dict[str, dict[str, Any]] = field(default_factory=dict)

    def failures(self, goal: float = GOAL) -> list[str]:
        bad = []
        for kind in TYPES:
            item = self.per_type.get(kind)
            if item is None or item["labels"] == 0:
                bad.append(f"seed {self.seed} {kind}: no labels")
                continue
            for measure in ("precision", "recall"):
                if item[measure] is None or item[measure] < goal:
                    bad.append(f"seed {self.seed} {kind}: {measure} {item[measure]}")
        return bad


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def detect(
    seed: int,
    events: int,
    generator: GeneratorSettings | None = None,
    detector: DetectorSettings | None = None,
    catalogue: Catalogue | None = None,
) -> Outcome:
    """Generate ``events`` events (reference snapshot and labels extra) for ``seed``, detect and score."""
    catalogue = catalogue or load_catalogue()
    generator = (generator or GeneratorSettings()).model_copy(update={"seed": seed})
    detector = detector or DetectorSettings()
    engine = Engine(generator.engine_config())
    feed = _Feed(Tasks(detector, clock=lambda: 0.0, catalogue=catalogue), catalogue)
    outcome = Outcome(seed, engine.config.start_time_ms, events)
    produced = 0
    while produced < events:
        items = engine.take(min(CHUNK, events - produced))
        produced += sum(1 for item in items if item.topic != ANOMALY_LABELS)
        feed(items, outcome)
    feed(engine.finish(), outcome)
    outcome.detections.extend(feed.tasks.flush())
    outcome.per_type = match(outcome.labels, outcome.detections)
    return outcome


class _Feed:
    """Raw records -> stage 1 -> the repartition topic's partitions -> their detection tasks."""

    def __init__(self, tasks: Tasks, catalogue: Catalogue) -> None:
        self.tasks = tasks
        self.partitions = {name: catalogue.topic(name).partitions for name in INPUT_TOPICS}
        self.repartitions = catalogue.topic(DETECTOR_INPUT).partitions
        self.offsets: dict[tuple[str, int], int] = defaultdict(int)

    def __call__(self, items: Iterable[Any], outcome: Outcome) -> None:
        for item in items:
            if item.topic == ANOMALY_LABELS:
                outcome.labels.append(item.value)
                continue
            topic = VIEWS if item.topic == PRODUCT_VIEWS else item.topic
            if topic not in self.partitions:
                continue
            part = partition_of(item.key, self.partitions[topic])
            offset = self.offsets[(topic, part)]
            self.offsets[(topic, part)] += 1
            record = detector_input(topic, item.value, part, offset)
            if record is not None:
                task = partition_of(record["entity_key"], self.repartitions)
                outcome.detections.extend(self.tasks.observe(task, record))


def seeds_arg(text: str) -> list[int]:
    """``1-10``, ``3,5,7`` or a mix (``1-3,9``)."""
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(outcomes: Iterable[Outcome]) -> str:
    rows = ["| seed | type | labels | detections | incidents matched | precision | recall | detections/incident |"]
    rows.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for outcome in outcomes:
        for kind in TYPES:
            item = outcome.per_type.get(kind) or {}
            rows.append(
                f"| {outcome.seed} | {kind} | {item.get('labels', 0)} | {item.get('detections', 0)} | "
                f"{item.get('labels_found', 0)} | {_fmt(item.get('precision'))} | {_fmt(item.get('recall'))} | "
                f"{_fmt(item.get('detections_per_incident'))} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.evaluation.detection", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seeds_arg, default=seeds_arg("1-10"), help="e.g. 1-10 or 3,5,7")
    parser.add_argument("--events", type=int, default=100_000, help="events per seed (default %(default)s)")
    args = parser.parse_args(argv)
    catalogue = load_catalogue()
    generator, detector = GeneratorSettings(), DetectorSettings()
    outcomes = []
    for seed in args.seeds:
        outcomes.append(detect(seed, args.events, generator, detector, catalogue))
        sys.stderr.write(f"seed {seed} done\n")
    sys.stdout.write(table(outcomes) + "\n")
    failures = [line for outcome in outcomes for line in outcome.failures()]
    for line in failures:
        sys.stdout.write(f"below the goal: {line}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
