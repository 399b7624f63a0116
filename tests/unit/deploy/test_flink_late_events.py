"""Reading window jobs' late-event counters: the operator names Flink gives their late-events writers, as its
Prometheus reporter writes them, the counts read back per job, and the alert rules reading the same series."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deploy.flink_jobs import JOBS, LATE_EVENTS_SERIES, late_counts

RULES = Path(__file__).resolve().parents[3] / "observability" / "prometheus" / "flink.rules.yml"


def _label_value(name: str) -> str:
    """As Flink's Prometheus reporter writes a label value: every character outside [a-zA-Z0-9:_] as "_"."""
    return re.sub(r"[^a-zA-Z0-9:_]", "_", name)


def test_each_jobs_late_writer_counts_for_that_job_only() -> None:
    # Flink names a sink's writer "<table>[<transformation id>]: Writer"; every job of a Flink job has its own
    writers = {_label_value(f"{spec.job.late_table}[{n}]: Writer"): n for n, spec in enumerate(JOBS.values(), 10)}
    others = {
        "aggregates_7_:_Writer": 500.0,
        "late_events_12_:_Writer": 9.0,
        "product_views_1m_late_events_13_:_Committer": 3.0,
        "Sink:_warehouse_9_": 40.0,
    }
    counts = late_counts({**{operator: float(n) for operator, n in writers.items()}, **others})
    assert counts == {spec.job.name: n for n, spec in enumerate(JOBS.values(), 10)}
    # series of one job named apart (the query sums subtasks already) add up
    table = JOBS["product_views"].job.late_table
    subtasks = {_label_value(f"{table}[3]: Writer"): 2.0, _label_value(f"{table}[4]: Writer"): 1.0}
    assert late_counts(subtasks) == {"product_views_1m": 3}


def test_the_late_event_rules_read_the_series_the_report_reads() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    records = [rule for group in groups for rule in group["rules"] if "late_events" in rule.get("record", "")]
    assert records and all(LATE_EVENTS_SERIES in " ".join(rule["expr"].split()) for rule in records)
