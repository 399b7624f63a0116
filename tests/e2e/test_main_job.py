"""The main job's stages end to end on the session's local stack."""

from __future__ import annotations

import pytest

from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from deploy.pipeline import execute
from schemas.catalogue import load_catalogue

pytestmark = pytest.mark.e2e


def test_main_job_completes_with_matching_counts(stack_env: dict[str, str]) -> None:
    stack = Stack(StackContext.create(StackSettings()))
    report = execute(stack, stack_env, events=5000)  # a new seed: new event ids, so deltas count this run
    assert report.problems == []
    sections = report.sections
    assert dict(sections["Contracts"])["subjects registered"] == str(len(load_catalogue().topics))
    smoke = dict(sections["Shared-library pipeline (product views)"])
    assert smoke["consumed and committed"].startswith("5,000")
    generated = dict(sections["Generator (this run)"])
    assert int(generated["product_views"].replace(",", "")) > 0
    mirror = dict(sections["Mirror (remote -> local)"])
    assert mirror["mirror lag after the run"] == "0 records"
    assert mirror["mirrored this run"].split()[0] == generated["product_views"]
    enrichment = dict(sections["Enrichment (Faust, this run)"])
    assert "[match]" in enrichment["enriched of expected"]
    assert "injected (labels) / detected" in dict(sections["Anomaly detection (this run)"])
    sinks = dict(sections["Sinks (this run)"])
    assert all("[match]" in value for key, value in sinks.items() if key != "time to drain")
