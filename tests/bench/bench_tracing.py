"""What tracing costs the generator: its throughput with tracing off, on, and with no tracer provider at all.

Each mode runs in a process of its own (a tracer provider is process-wide and cannot be taken back), the same
full-speed generator run as ``bench_generator`` (every family to the local broker), best of two runs each, the
modes alternated:

* ``no_provider``: ``configure_service_tracing`` never called (the API's no-op tracer): the baseline;
* ``off``: the service's settings without ``OTEL_EXPORTER_OTLP_ENDPOINT``, as every service starts by default
  (goal: >= 0.95x the baseline, i.e. no cost beyond the machine's noise);
* ``on``: spans exported over OTLP to the stack's Jaeger (``JAEGER_OTLP_ENDPOINT``; without one, to an address
  where nothing listens: the exporter drops them in its own thread) at ``TRACE_SAMPLE_RATIO`` 0.01, and at 1 (every
  record traced): informational.

Rates are per second of the producing thread's CPU time (co-tenants disturb it much less than wall-clock time).
``python -m tests.bench.bench_tracing`` (stack env from FREIGHTLINE_STACK_ENV, default .freightline/stack.env).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

from tests.bench.rows import row, stack_env

EVENTS = 60_000
GOAL_RATIO = 0.95
UNREACHABLE_OTLP = "http://127.0.0.1:9"  # the discard port: nothing answers there
MODES: dict[str, dict[str, str]] = {
    "no_provider": {},
    "off": {},
    "on_ratio_0.01": {"TRACE_SAMPLE_RATIO": "0.01"},
    "on_ratio_1": {"TRACE_SAMPLE_RATIO": "1"},
}


def measure(mode: str) -> dict[str, float]:
    """One mode, in this process: the generator's events per second of producing-thread CPU, best of two."""
    from services.common.serde import registry_client
    from services.common.settings import KafkaSettings, RemoteKafkaSettings, SchemaRegistrySettings, ServiceSettings
    from services.common.tracing import configure_service_tracing
    from services.generator.runner import GeneratorRunner
    from services.generator.settings import GeneratorSettings

    env = stack_env()
    if mode != "no_provider":
        configure_service_tracing(ServiceSettings(service_name="generator"))
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    settings = GeneratorSettings(topic_prefix=f"bench-trace-{uuid.uuid4().hex[:8]}.", pace=False)
    local = KafkaSettings(bootstrap_servers=bootstrap)
    remote = RemoteKafkaSettings(bootstrap_servers=bootstrap, security_protocol="PLAINTEXT")
    runner = GeneratorRunner(
        settings.model_copy(update={"reference_snapshot": False}),
        local,
        remote,
        registry_client(SchemaRegistrySettings(url=env["SCHEMA_REGISTRY_URL"])),
    )
    runner.setup()
    runner.run(events=2_000)  # warm-up: connections, schema registrations, topic metadata
    rates = []
    for _ in range(2):
        cpu = time.thread_time()
        summary = runner.run(events=EVENTS)
        rates.append(summary.records / (time.thread_time() - cpu))
    return {"events_per_cpu_s": max(rates)}


def _in_process(mode: str, env: dict[str, str]) -> float:
    otlp = env.get("JAEGER_OTLP_ENDPOINT", UNREACHABLE_OTLP)
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp} if mode.startswith("on") else {}
    inherited = {key: value for key, value in env.items() if key != "OTEL_EXPORTER_OTLP_ENDPOINT"}
    process_env = {**inherited, **MODES[mode], **tracing, "LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_tracing", "--measure", mode],
        env=process_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tracing bench mode {mode} failed:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return float(measured["events_per_cpu_s"])


def run(env: dict[str, str]) -> list[dict[str, object]]:
    rates = {mode: _in_process(mode, env) for mode in MODES}
    baseline = "generator_no_tracer_provider"
    unit = "events/s of producing-thread CPU"
    return [
        row(
            "generator_tracing_off",
            rates["off"],
            unit,
            baseline,
            rates["no_provider"],
            GOAL_RATIO,
            note="tracing off (no OTLP endpoint) against no tracer provider at all: off costs nothing",
        ),
        row(
            "generator_tracing_on_ratio_0.01",
            rates["on_ratio_0.01"],
            unit,
            baseline,
            rates["no_provider"],
            None,
            note="informational: a sampling decision per record, 1% of the records traced and exported",
        ),
        row(
            "generator_tracing_on_ratio_1",
            rates["on_ratio_1"],
            unit,
            baseline,
            rates["no_provider"],
            None,
            note="informational: every record traced and exported over OTLP",
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        json.dump(run(stack_env()), sys.stdout, indent=2)
        sys.stdout.write("\n")
