"""The mark the deployment sends for a Flink job it stopped on purpose (read by FreightlineFlinkJobsLost through the
stack's statsd_exporter): the StatsD line statsd/mapping.yml maps, or nothing without the stack's StatsD address."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from deploy.flink_jobs import STOPPED_ON_PURPOSE, record_stopped

ROOT = Path(__file__).resolve().parents[3]


def test_each_stopped_job_is_one_gauge_line_tagged_with_its_id() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)  # hang guard
        port = receiver.getsockname()[1]
        assert record_stopped({"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(port)}, ["a1b2", "c3d4"])
        lines = [receiver.recv(1024).decode() for _ in range(2)]
    for job_id, line in zip(["a1b2", "c3d4"], lines, strict=True):
        name, rest = line.split(":")
        value, kind = rest.split("|")
        assert name == f"{STOPPED_ON_PURPOSE},job_id={job_id}" and kind == "g" and int(value) > 1_700_000_000


def test_nothing_is_sent_without_the_stacks_statsd_address() -> None:
    assert not record_stopped({}, ["a1b2"])


def test_the_exporter_maps_the_mark_to_the_series_the_alert_reads() -> None:
    mappings = yaml.safe_load((ROOT / "observability" / "statsd" / "mapping.yml").read_text())["mappings"]
    names = {m["name"] for m in mappings if m["match"] == STOPPED_ON_PURPOSE}
    assert names == {"freightline_flink_job_stopped_on_purpose"}
    assert "freightline_flink_job_stopped_on_purpose" in (ROOT / "observability/prometheus/flink.rules.yml").read_text()
