"""Generator -> Kafka -> detector service -> scorer on unique topics: precision, recall and detections per
matched incident per anomaly type, on seeds the detectors were not tuned on (1 and 5 were)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.anomaly_detector.score import score
from services.anomaly_detector.settings import INPUT_TOPICS
from tests.integration.enricher import support

pytestmark = pytest.mark.integration

# The main job's volume at the generator's default rates (3 anomalies per minute of event time).
EVENTS = 100_000


@pytest.mark.parametrize("seed", [3, 8])
def test_precision_and_recall_per_type(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path, seed: int
) -> None:
    prefix = unique_name("det") + "-"
    summary = support.run_generator(stack_env, prefix, EVENTS, seed)
    assert summary["anomalies_total"] >= 10
    group = f"{prefix}detector"
    env = support.process_env(
        stack_env,
        ANOMALY_DETECTOR_TOPIC_PREFIX=prefix,
        ANOMALY_DETECTOR_GROUP_ID=group,
        ANOMALY_DETECTOR_IDLE_FLUSH_S="2",
    )
    with (tmp_path / "detector.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.anomaly_detector"], env=env, cwd=support.ROOT, stdout=log, stderr=log
        )
    try:
        assert support.wait_caught_up(stack_env, group, [prefix + t for t in INPUT_TOPICS], 240, process)
    finally:
        code = support.stop(process)  # SIGTERM: open windows are flushed before exit
    assert code == 0, (tmp_path / "detector.log").read_text()[-3000:]
    result = score(stack_env, f"{prefix}analytics.anomaly_labels.v1", f"{prefix}analytics.anomalies.v1")
    print(summary["seed"], summary["start"], result)
    assert result["undecodable"] == dict.fromkeys(result["undecodable"], 0)
    per_type = result["per_type"]
    assert set(per_type) == {"PRODUCT_VIEW_SPIKE", "SHIPMENT_DELAY_SURGE", "ERROR_RATE_SPIKE", "OTHER"}
    for kind, item in per_type.items():
        assert item["precision"] is not None and item["precision"] >= 0.9, (kind, item)
        assert item["recall"] is not None and item["recall"] >= 0.9, (kind, item)
        assert item["detections_per_incident"] <= 1.5, (kind, item)
