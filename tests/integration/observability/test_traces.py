"""One record, one trace across every hop, read back through Jaeger's query API.

The generator sends a small world on unique topics with tracing on (``OTEL_EXPORTER_OTLP_ENDPOINT`` at Jaeger's
OTLP/HTTP receiver, ``TRACE_SAMPLE_RATIO=1``: every record starts a trace); product views go to the remote
cluster. The mirror copies them to the local cluster, where the enricher, the MongoDB sink and the HDFS sink read
them, each a process of its own with tracing on. Each hop's span must be in the record's trace, the child of the
previous hop's span: the context travels in the records' Kafka headers, rewritten by each consumer to its own
span. Jaeger is the stack's when it runs one (``JAEGER_UI_URL``), else one started alone on free ports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.context import StackContext
from deploy.local.observability_components import Jaeger
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack
from schemas import topics as topic_names
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_mongodb.settings import MongoSinkSettings
from tests.integration.observability.platform import (
    enricher_process,
    mirror_process,
    run_generator,
    sink_process,
    wait_for_topic,
)
from tests.integration.stack.support import private_stack_context

pytestmark = pytest.mark.integration

EVENTS = 300
HANG_GUARD_S = 180.0
JAEGER_PORTS = ("jaeger_ui_port", "jaeger_otlp_http_port", "jaeger_otlp_grpc_port", "jaeger_query_grpc_port")
DOWNSTREAM = ("enricher", "sink_mongodb", "sink_hdfs")
"""The services that read the mirrored product views (each a child hop of the mirror)."""


@pytest.fixture(scope="module")
def jaeger(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``JAEGER_UI_URL`` and ``JAEGER_OTLP_ENDPOINT``: the stack's Jaeger, or one started alone (and stopped)."""
    if "JAEGER_UI_URL" in stack_env:
        yield {key: stack_env[key] for key in ("JAEGER_UI_URL", "JAEGER_OTLP_ENDPOINT")}
        return
    ctx = private_stack_context(tmp_path_factory.mktemp("jaeger"), ports=JAEGER_PORTS)
    main = StackContext.create(StackSettings())  # the checkout's state directory, where setup built Jaeger
    (ctx.paths.home / "bin").symlink_to(main.paths.home.resolve() / "bin")
    stack = Stack(ctx, [Jaeger()])
    env = stack.up()
    try:
        yield env
    finally:
        stack.down()


def _traces(ui_url: str, service: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{ui_url}/api/traces", params={"service": service, "lookback": "1h", "limit": 500}, timeout=30
    )
    if response.status_code == 404:  # Jaeger knows no span of that service yet
        return []
    response.raise_for_status()
    return list(response.json()["data"] or [])


def _hops(trace: dict[str, Any]) -> dict[str, list[tuple[dict[str, Any], str | None]]]:
    """service -> [(span, the service of its parent span)] of one trace."""
    services = {pid: process["serviceName"] for pid, process in trace["processes"].items()}
    by_id = {span["spanID"]: span for span in trace["spans"]}
    hops: dict[str, list[tuple[dict[str, Any], str | None]]] = {}
    for span in trace["spans"]:
        parents = [ref["spanID"] for ref in span.get("references", []) if ref["refType"] == "CHILD_OF"]
        parent = by_id.get(parents[0]) if parents else None
        parent_service = services[parent["processID"]] if parent is not None else None
        hops.setdefault(services[span["processID"]], []).append((span, parent_service))
    return hops


def _linked_end_to_end(trace: dict[str, Any]) -> bool:
    """The generator's send span is the root, the mirror's span its child, and each downstream service's span
    a child of the mirror's."""
    hops = _hops(trace)
    if not all(service in hops for service in ("generator", "mirror", *DOWNSTREAM)):
        return False
    return (
        all(parent is None for _, parent in hops["generator"])
        and all(parent == "generator" for _, parent in hops["mirror"])
        and all(parent == "mirror" for service in DOWNSTREAM for _, parent in hops[service])
    )


def test_one_record_is_one_trace_across_generator_mirror_enricher_and_sinks(
    stack_env: dict[str, str], jaeger: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    env = {
        **stack_env,
        "LOG_LEVEL": "WARNING",
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger["JAEGER_OTLP_ENDPOINT"],
        "TRACE_SAMPLE_RATIO": "1",
    }
    prefix = unique_name("trace") + "-"
    run_generator(env, prefix, EVENTS, 5, tmp_path)
    database = unique_name("trace").replace("-", "_")
    root = f"/freightline/test/{database}"
    consumers = [
        enricher_process(env, prefix, tmp_path),
        sink_process(env, prefix, tmp_path, unique_name, MongoSinkSettings, DATABASE=database),
        sink_process(env, prefix, tmp_path, unique_name, HdfsSinkSettings, ROOT=root),
    ]
    services = [mirror_process(env, prefix, tmp_path, unique_name).start()]
    found: list[dict[str, Any]] = []
    seen: list[dict[str, list[tuple[str, str | None]]]] = []
    try:
        wait_for_topic(env, prefix + topic_names.PRODUCT_VIEWS)  # before its consumers subscribe
        services += [service.start() for service in consumers]
        deadline = time.monotonic() + HANG_GUARD_S
        while not found:
            dead = [service.module for service in services if not service.alive()]
            assert not dead, f"services exited early: {dead} (logs in {tmp_path})"
            traces = _traces(jaeger["JAEGER_UI_URL"], "sink_hdfs")
            found = [trace for trace in traces if _linked_end_to_end(trace)]
            seen[:] = [
                {
                    service: [(span["operationName"], parent) for span, parent in hops]
                    for service, hops in _hops(t).items()
                }
                for t in traces[:3]
            ]
            assert time.monotonic() < deadline, (
                f"no trace spans every hop; traces of sink_hdfs seen: {seen} ({tmp_path})"
            )
            time.sleep(2)
    finally:
        codes = {service.module: service.stop() for service in services}
    assert codes == dict.fromkeys(codes, 0), f"services did not stop cleanly (logs in {tmp_path})"
    trace = found[0]
    hops = _hops(trace)
    assert {span["traceID"] for span in trace["spans"]} == {trace["traceID"]}
    assert [span["operationName"] for span, _ in hops["generator"]] == [
        f"send {prefix}{topic_names.UPSTREAM_PRODUCT_VIEWS}"
    ]
    assert [span["operationName"] for span, _ in hops["mirror"]] == [
        f"process {prefix}{topic_names.UPSTREAM_PRODUCT_VIEWS}"
    ]
    downstream = {span["operationName"] for service in DOWNSTREAM for span, _ in hops[service]}
    assert downstream == {f"process {prefix}{topic_names.PRODUCT_VIEWS}"}
