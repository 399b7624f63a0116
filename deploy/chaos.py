"""The pipeline-wide chaos harness (``freightline chaos``): a seeded world through every stage while faults hit it,
then every event counted by id where it landed.

One run uses topics, groups and targets of its own (a topic prefix, a MongoDB database, an HDFS root, a GCS bucket)
on a running stack, never stopping the stack's servers: outages go through a Toxiproxy server the harness starts
(``deploy/toxiproxy.py``) in front of the registry and each sink's target. With ``private_kafka`` (the default) the
local cluster is a KRaft broker of the run's own that advertises its client listener through Toxiproxy, so every
service's Kafka traffic crosses the proxy (latency, bandwidth and reset toxics) and the broker can be SIGKILLed and
restarted; a second listener, advertised directly, serves the harness's own probes and reads. The remote cluster,
where the generator writes product views as in production and the mirror reads them to copy them into the local
cluster, is a second broker of the run's own, the same way (the mirror's traffic crosses its proxy, and it too can be
SIGKILLed and restarted); without ``private_kafka`` both are the stack's.

The run: the generator produces a seeded backlog while the mirror, the enricher, the anomaly detector and the three
sinks start as processes exactly as deployed, then a paced generator stream runs while faults come at seeded random
moments of a timeline (SIGKILL of a service and its restart, the registry or a sink target down, a broker SIGKILL,
toxics on the local broker's link), each with the lag of the groups it hits at that moment. A service that exits on its
own (an endpoint down at start-up) is started again, as an orchestrator would. Then everything is restored, the
groups drain, the services stop, and each stage is counted by event id read back from its destination (topics, MongoDB
documents, HDFS files, GCS objects): expected, delivered, lost, duplicated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import fastavro
import typer
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from deploy.chaos_flink import FlinkStage, WindowCount
from deploy.chaos_load import (
    Calibration,
    GroupSample,
    MemoryRow,
    RssSampler,
    StageRate,
    busy_rate,
    memory_table,
    paced_rates,
    scheduled_peak,
)
from deploy.local.components import KafkaBroker, Program
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.toxiproxy import toxiproxy_binary
from deploy.processes import ClusterProbe, ServiceProcess, remote_client_config, remote_kafka_env
from deploy.toxiproxy import LOOPBACK, Proxy, Toxiproxy, ToxiproxyServer, free_port
from schemas import topics
from schemas.catalogue import load_catalogue
from services.anomaly_detector.settings import DETECTOR_INPUT, INPUT_TOPICS
from services.anomaly_detector.topology import detector_input
from services.common.kafka import ensure_topics, read_topic
from services.common.serde import AvroSerde, registry_client
from services.common.settings import GcsSettings, HdfsSettings, KafkaSettings, MongoSettings, SchemaRegistrySettings
from services.common.sinks.files import FileStore, committed_files
from services.enricher.settings import OUTPUT_TOPICS, SOURCE_TOPICS
from services.generator.settings import GeneratorSettings
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_hdfs.target import store_for as hdfs_store
from services.sink_mongodb.target import mongo_client

console = Console(stderr=True)

SERVICES = ("mirror", "enricher", "anomaly_detector", "sink_mongodb", "sink_hdfs", "sink_gcs")
TARGETS = ("mongodb", "hdfs", "gcs")  # each sink's target, by proxy name
MONGO_COLLECTION = "views"
RESTART_BACKOFF_S = 3.0
UNTIL_STOPPED_S = 24 * 3600.0  # the paced stream's length when the harness stops it itself
UNREACHABLE_AT_START = 4  # a service's exit status when an endpoint does not answer at start-up
HDFS_TOPICS = (topics.CLICKSTREAM, topics.ORDERS, topics.SHIPMENT_EVENTS, topics.PRODUCT_VIEWS)
GCS_TOPICS = (topics.SUPPLIER_INVOICES, topics.SUPPLIER_PAYMENTS)
LOCAL_RAW = (*HDFS_TOPICS[:3], *GCS_TOPICS)  # what the generator writes locally (product views go remote)
# how long each outage lasts by default (the issue's: the registry 20 s, MongoDB, HDFS and GCS 30 s each) and a toxic
# on the local broker's link (a reset toxic at most RESET_S); ``--outage-s`` sets one length for all of them
OUTAGES_S = {"registry": 20.0, "mongodb": 30.0, "hdfs": 30.0, "gcs": 30.0}
TOXIC_S = 20.0
RESET_S = 3.0
PRIVATE_BROKER_START_S = 120.0  # longest a private broker's start may take
BROKERS = ("kafka", "remote-kafka")  # the run's private brokers, by proxy name: the local and the remote cluster


@dataclass(frozen=True)
class ChaosOptions:
    events: int = 20_000
    faults: int = 12
    seed: int = 1
    private_kafka: bool = True
    outage_s: float | None = None  # one length for every outage and toxic (None: OUTAGES_S and TOXIC_S)
    gap_s: tuple[float, float] = (1.0, 6.0)  # seeded pause between two faults
    drain_timeout_s: float = 900.0
    lag_wait_s: float = 5.0  # longest a fault waits for its groups to have lag
    minutes: float | None = None  # the paced stream's length; the faults spread over it (None: right after them)
    rate: float | None = None  # events/s of the paced stream (None: the generator's default mix and rates)
    load_factor: float | None = None  # pace the stream at this many times the slowest stage's measured rate
    memory_every_s: float = 3.0  # between two samples of every service's RSS
    flink: bool = True  # the window jobs too, when the stack has a Flink cluster (FLINK_REST_URL)
    services: tuple[str, ...] = SERVICES  # the services the run starts (and counts)
    fault_kinds: frozenset[str] | None = None  # the kinds of fault to inject (None: every kind the run has)

    def __post_init__(self) -> None:
        if self.rate is not None and self.load_factor is not None:
            raise ValueError("--rate and --load-factor both set the stream's rate: give one")
        unknown = set(self.services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; known: {list(SERVICES)}")
        for name in ("minutes", "rate", "load_factor", "outage_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")

    def outage(self, target: str) -> float:
        """How long an outage of ``target`` (the registry, a sink's target) or a toxic on its link lasts."""
        if self.outage_s is not None:
            return self.outage_s
        return OUTAGES_S.get(target, TOXIC_S)

    @property
    def longest_outage_s(self) -> float:
        return self.outage_s if self.outage_s is not None else max(*OUTAGES_S.values(), TOXIC_S)


@dataclass
class Fault:
    at_s: float  # seconds after the services started
    kind: str  # kill, down, broker-kill, latency, bandwidth, reset
    target: str
    lag: int | None = None  # uncommitted records of the groups it hits, at that moment (None: not measurable)
    note: str = ""
    # how long it lasted: a service's pause before its restart, an outage's or a toxic's length, a broker's time from
    # its SIGKILL until it answered again (None: not over, or no outage)
    outage_s: float | None = None


@dataclass(frozen=True)
class StageCount:
    stage: str
    destination: str
    expected: int
    delivered: int  # distinct expected ids found at the destination
    lost: int
    duplicated: int  # copies beyond those of the stage's own input (the duplicates this stage made)
    unexpected: int  # ids at the destination that no input had


@dataclass
class ChaosResult:
    options: ChaosOptions
    run_id: str
    counts: list[StageCount] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    restarts: Counter[str] = field(default_factory=Counter)  # service exits the harness restarted (not its kills)
    elapsed_s: float = 0.0
    drained: bool = False
    lag_left: dict[str, int | None] = field(default_factory=dict)  # per service when the drain ended
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase of the run
    memory: list[MemoryRow] = field(default_factory=list)  # every service's RSS over the run
    windows: list[WindowCount] = field(default_factory=list)  # the Flink window jobs' windows (when they ran)
    calibration: Calibration | None = None  # the stages' rates over the backlog (with a load factor)
    stream_rate: float | None = None  # the paced stream's requested events/s (None: the generator's defaults)
    stream_s: float = 0.0  # the paced stream's length
    generated: int = 0  # events the run's generator runs produced (backlog and stream), counted on their topics

    @property
    def stream_events(self) -> int:
        return max(self.generated - self.options.events, 0)

    def lost(self) -> int:
        """Events lost or from nowhere at any stage, and windows lost, doubled or wrong (exactly once claimed)."""
        windows = sum(count.lost + count.duplicated + count.differing for count in self.windows)
        return sum(count.lost + count.unexpected for count in self.counts) + windows

    def tables(self) -> list[Table]:
        counts = Table(title=f"Chaos run {self.run_id}: every event counted by id at its destination")
        for column in ("stage", "destination", "expected", "delivered", "lost", "duplicated", "unexpected"):
            counts.add_column(column, justify="left" if column in ("stage", "destination") else "right")
        for c in self.counts:
            lost = f"[bold red]{c.lost:,}[/]" if c.lost else "0"
            counts.add_row(
                c.stage,
                c.destination,
                f"{c.expected:,}",
                f"{c.delivered:,}",
                lost,
                f"{c.duplicated:,}",
                str(c.unexpected),
            )
        faults = Table(title=f"Faults ({len(self.faults)}, seed {self.options.seed})")
        for column in ("at", "fault", "target", "lag at fault", "outage", "note"):
            faults.add_column(column)
        for f in self.faults:
            lag = "-" if f.lag is None else f"{f.lag:,}"
            outage = "-" if f.outage_s is None else f"{f.outage_s:.1f}s"
            faults.add_row(f"{f.at_s:6.1f}s", f.kind, f.target, lag, outage, f.note)
        tables = [counts, faults]
        if self.windows:
            tables.append(windows_table(self.windows))
        if self.calibration is not None:
            tables.append(self.calibration.table())
        if self.memory:
            tables.append(memory_table(self.memory, self.options.memory_every_s))
        return tables

    def stream_line(self) -> str:
        """The paced stream: its length, requested and achieved rates."""
        achieved = self.stream_events / self.stream_s if self.stream_s else 0.0
        requested = "the generator's default rates" if self.stream_rate is None else f"{self.stream_rate:,.0f} events/s"
        if self.options.load_factor is not None and self.stream_rate is not None:
            requested += f" ({self.options.load_factor:g} x the slowest stage's measured rate)"
        return (
            f"paced stream: {self.stream_s:.0f}s at {requested}; produced {self.stream_events:,} events "
            f"({achieved:,.0f} events/s)"
        )

    def memory_exceeded(self) -> list[str]:
        return [row.service for row in self.memory if row.within is False]


# -- the run's private broker -------------------------------------------------------------------------------
class PrivateBroker(KafkaBroker):
    """A single-node KRaft broker of one chaos run (its local or its remote cluster, plaintext): its client listener
    advertised at ``advertised`` (the Toxiproxy in front of it), a second listener ``DIRECT`` advertised as itself
    for the harness; no metrics agent."""

    def __init__(self, name: str, ctx: StackContext, advertised: str, direct_port: int) -> None:
        super().__init__(name, sasl=False)
        self.ctx = ctx
        self.advertised = advertised
        self.direct_port = direct_port
        self.process: subprocess.Popen[bytes] | None = None
        self.up = False  # answering: set once started, cleared by its SIGKILL or stop

    def _properties(self, ctx: StackContext, data: Path) -> str:
        client, controller = ctx.settings.kafka_port, ctx.settings.kafka_controller_port
        lines = super()._properties(ctx, data).splitlines()
        keep = [line for line in lines if not line.startswith(("listeners=", "advertised.listeners=", "listener."))]
        return (
            "\n".join(
                [
                    *keep,
                    f"listeners=PLAINTEXT://{LOOPBACK}:{client},DIRECT://{LOOPBACK}:{self.direct_port},"
                    f"CONTROLLER://{LOOPBACK}:{controller}",
                    f"advertised.listeners=PLAINTEXT://{self.advertised},DIRECT://{LOOPBACK}:{self.direct_port}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,DIRECT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "transaction.max.timeout.ms=3600000",
                ]
            )
            + "\n"
        )

    def program(self, ctx: StackContext) -> Program:
        program = super().program(ctx)
        return Program(command=[arg for arg in program.command if not arg.startswith("-javaagent:")])

    @property
    def direct(self) -> str:
        return f"{LOOPBACK}:{self.direct_port}"

    def start(self, timeout_s: float = PRIVATE_BROKER_START_S) -> None:
        self.prepare(self.ctx)
        log = self.ctx.paths.logs / f"{self.name}.log"
        with log.open("ab") as handle:
            self.process = subprocess.Popen(self.program(self.ctx).command, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not _answers(self.client_config(self.ctx)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the run's Kafka broker {self.name} did not start; see {log}")
            time.sleep(0.5)
        self.after_ready(self.ctx)  # the group coordinator answers
        self.up = True

    def client_config(self, ctx: StackContext) -> dict[str, str]:
        return {"bootstrap.servers": self.direct}

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        self.up = False
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        self.up = False
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self) -> None:
        data, props, log_config = self._dirs(self.ctx)
        shutil.rmtree(data, ignore_errors=True)
        for path in (props, log_config):
            path.unlink(missing_ok=True)


def _answers(config: Mapping[str, str]) -> bool:
    try:
        return bool(AdminClient({**config, "socket.timeout.ms": 2000}).list_topics(timeout=3).brokers)
    except Exception:
        return False


# -- the harness ------------------------------------------------------------------------------------------
class Harness:
    """One chaos run: its proxies, broker, services, faults and counts (see the module's docstring)."""

    def __init__(self, stack: StackContext, env: Mapping[str, str], options: ChaosOptions) -> None:
        self.stack = stack
        self.env = dict(env)
        self.options = options
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"chaos-{self.run_id}."
        self.random = random.Random(options.seed)
        self.logs = stack.paths.logs / f"chaos-{self.run_id}"
        self.result = ChaosResult(options, self.run_id)
        self.toxiproxy = ToxiproxyServer(toxiproxy_binary(stack), self.logs / "toxiproxy.log")
        self.proxies: dict[str, Proxy] = {}
        self.brokers: dict[str, PrivateBroker] = {}  # the run's own, by proxy name (BROKERS), with private_kafka
        self.restarting: list[threading.Thread] = []  # broker restarts under way
        self.failures: list[Exception] = []  # what a broker restart raised (raised again by the run)
        self.processes: dict[str, ServiceProcess] = {}
        self.down: set[str] = set()  # services killed and not restarted yet
        self.probes: dict[str, ClusterProbe] = {}  # per cluster, for the groups' lag
        self.exited_at: dict[str, float] = {}  # services that exited on their own, waiting for their restart
        self.generators: dict[str, ServiceProcess] = {}
        self.database = f"chaos_{self.run_id}"
        self.hdfs_root = f"/chaos/{self.run_id}"
        self.bucket = f"chaos-{self.run_id}"
        self.started = 0.0
        self.local_direct = ""  # the run's local cluster for the harness's own probes and reads
        self.sampler = RssSampler(self.pids, options.memory_every_s)
        self.flink: FlinkStage | None = None

    # names
    def t(self, name: str) -> str:
        return self.prefix + name

    @property
    def direct_env(self) -> dict[str, str]:
        """The stack's endpoints with the run's local cluster (its direct listener) for the harness's own use."""
        return {**self.env, "KAFKA_BOOTSTRAP_SERVERS": self.local_direct}

    def local_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.local_direct}

    def remote_env(self, *, via_proxy: bool = False) -> dict[str, str]:
        """The ``REMOTE_KAFKA_*`` settings of the run's remote cluster: the stack's, or the run's private remote
        broker (plaintext) at its direct listener or, ``via_proxy`` (the services'), at its proxy."""
        broker = self.brokers.get("remote-kafka")
        if broker is None:
            return {key: value for key, value in self.env.items() if key.startswith("REMOTE_KAFKA_")}
        address = self.proxies["remote-kafka"].listen if via_proxy else broker.direct
        return {"REMOTE_KAFKA_BOOTSTRAP_SERVERS": address, "REMOTE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}

    def remote_config(self) -> dict[str, str]:
        """Client properties of the run's remote cluster for the harness's own probes and reads."""
        return remote_client_config(self.remote_env())

    def brokers_up(self) -> bool:
        """Whether every broker of the run's own answers (none is killed and not back yet)."""
        return all(broker.up for broker in self.brokers.values())

    # -- set-up ----------------------------------------------------------------------------------------------
    def setup(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        client = self.toxiproxy.start()
        for name, key in (("registry", "SCHEMA_REGISTRY_URL"), ("hdfs", "HDFS_WEBHDFS_URL"), ("gcs", "GCS_ENDPOINT")):
            self.proxies[name] = client.create(name, _netloc(self.env[key]))
        self.proxies["mongodb"] = client.create("mongodb", _netloc(self.env["MONGODB_URI"]))
        if self.options.private_kafka:
            self._start_brokers(client)
        else:
            self.local_direct = self.env["KAFKA_BOOTSTRAP_SERVERS"]
        gcs = GcsStore(gcs_client(GcsSettings.from_mapping(self.env)), self.bucket)
        gcs.ensure_bucket()
        if self.options.flink and self.env.get("FLINK_REST_URL"):
            self.flink = FlinkStage(self.stack, self.env["FLINK_REST_URL"], self.run_id, self.t)

    def _start_brokers(self, client: Toxiproxy) -> None:
        """The run's local and remote brokers, each behind a proxy of its own, started side by side."""
        for name in BROKERS:
            settings = StackSettings(
                kafka_port=free_port(),
                kafka_controller_port=free_port(),
                kafka_heap="384m",
                home=str(self.stack.paths.home),
            )
            proxy = client.create(name, f"{LOOPBACK}:{settings.kafka_port}")
            self.proxies[name] = proxy
            ctx = StackContext.create(settings)
            self.brokers[name] = PrivateBroker(f"chaos-{name}-{self.run_id}", ctx, proxy.listen, free_port())
            console.print(f"chaos: starting the run's {name} broker (client {proxy.listen} via toxiproxy)")
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            for future in [pool.submit(broker.start) for broker in self.brokers.values()]:
                future.result()
        self.local_direct = self.brokers["kafka"].direct

    def service_env(self) -> dict[str, str]:
        """What every service sees: the local cluster, the registry and the sink targets through the proxies."""
        p = self.proxies
        env = {
            **self.env,
            "SCHEMA_REGISTRY_URL": _via(self.env["SCHEMA_REGISTRY_URL"], p["registry"].listen),
            "MONGODB_URI": _via(self.env["MONGODB_URI"], p["mongodb"].listen),
            "HDFS_WEBHDFS_URL": _via(self.env["HDFS_WEBHDFS_URL"], p["hdfs"].listen),
            "GCS_ENDPOINT": _via(self.env["GCS_ENDPOINT"], p["gcs"].listen),
            "STORAGE_EMULATOR_HOST": _via(self.env["GCS_ENDPOINT"], p["gcs"].listen),
            "STARTUP_TIMEOUT_S": "60",
        }
        env.pop("METRICS_TARGETS_DIR", None)  # the run's services stay out of the stack's Prometheus
        if "kafka" in self.brokers:
            env["KAFKA_BOOTSTRAP_SERVERS"] = p["kafka"].listen
        return _with_remote(env, self.remote_env(via_proxy=True))

    def service(self, name: str) -> ServiceProcess:
        env, log = self.service_env(), self.logs / f"{name}.log"
        upstream = self.t(topics.UPSTREAM_PRODUCT_VIEWS)
        own: dict[str, dict[str, str]] = {
            "mirror": {
                "MIRROR_TOPICS": upstream,
                "MIRROR_RENAME": json.dumps({upstream: self.t(topics.PRODUCT_VIEWS)}),
                "MIRROR_GROUP_ID": self.t("mirror"),
                "MIRROR_LAG_INTERVAL_S": "2",
            },
            "enricher": {
                "ENRICHER_TOPIC_PREFIX": self.prefix,
                "ENRICHER_APP_ID": self.t("enricher"),
                "ENRICHER_DATA_DIR": str(self.logs / "enricher-data"),
            },
            "anomaly_detector": {
                "ANOMALY_DETECTOR_TOPIC_PREFIX": self.prefix,
                "ANOMALY_DETECTOR_GROUP_ID": self.t("detector"),
                "ANOMALY_DETECTOR_IDLE_FLUSH_S": "2",
            },
            "sink_mongodb": {
                "SINK_MONGODB_TOPICS": self.t(topics.PRODUCT_VIEWS),
                "SINK_MONGODB_GROUP_ID": self.t("sink-mongodb"),
                "SINK_MONGODB_DATABASE": self.database,
                "SINK_MONGODB_COLLECTIONS": f"{self.t(topics.PRODUCT_VIEWS)}={MONGO_COLLECTION}",
            },
            "sink_hdfs": {
                "SINK_HDFS_TOPICS": ",".join(map(self.t, HDFS_TOPICS)),
                "SINK_HDFS_GROUP_ID": self.t("sink-hdfs"),
                "SINK_HDFS_ROOT": self.hdfs_root,
                "SINK_HDFS_BATCH_TIMEOUT_S": "2",
            },
            "sink_gcs": {
                "SINK_GCS_TOPICS": ",".join(map(self.t, GCS_TOPICS)),
                "SINK_GCS_GROUP_ID": self.t("sink-gcs"),
                "SINK_GCS_BUCKET": self.bucket,
                "SINK_GCS_PREFIX": "raw",
                "SINK_GCS_BATCH_TIMEOUT_S": "2",
            },
        }
        return ServiceProcess(f"services.{name}", env, log, **own[name])

    def groups(self, name: str) -> list[tuple[dict[str, str], str, list[str]]]:
        """(cluster config, group, topics) of each consumer group of a service."""
        local = self.local_config()
        return {
            "mirror": [(self.remote_config(), self.t("mirror"), [self.t(topics.UPSTREAM_PRODUCT_VIEWS)])],
            "enricher": [(local, self.t("enricher"), [self.t(t) for t in SOURCE_TOPICS.values()])],
            "anomaly_detector": [
                (local, self.t("detector") + "-repartition", [self.t(t) for t in INPUT_TOPICS]),
                (local, self.t("detector"), [self.t(DETECTOR_INPUT)]),
            ],
            "sink_mongodb": [(local, self.t("sink-mongodb"), [self.t(topics.PRODUCT_VIEWS)])],
            "sink_hdfs": [(local, self.t("sink-hdfs"), [self.t(t) for t in HDFS_TOPICS])],
            "sink_gcs": [(local, self.t("sink-gcs"), [self.t(t) for t in GCS_TOPICS])],
            **{"flink": [(local, group, [source]) for group, source in self.flink.groups()] if self.flink else []},
        }[name]

    def consumers(self) -> list[str]:
        """What consumes in this run: its services, and the window jobs when they run."""
        return [*self.options.services, *(["flink"] if self.flink else [])]

    def lag(self, services: Iterable[str]) -> int | None:
        """Uncommitted records of the services' groups (None when a cluster does not answer now)."""
        if not self.brokers_up():
            return None  # a broker of the run's is down: nothing to measure against
        total = 0
        for name in services:
            for config, group, names in self.groups(name):
                key = config["bootstrap.servers"]
                try:
                    total += self.probes.setdefault(key, ClusterProbe(config)).lag_now(group, names)
                except KafkaException:
                    # a client of a broker that was killed and restarted may never answer again: a new one will
                    self.probes.pop(key, None)
                    return None
        return total

    def pids(self) -> dict[str, int]:
        """Every running service process and generator run, by name (what the RSS sampler follows)."""
        # copies first: the sampler's thread calls this while the harness starts processes
        running = {name: process for name, process in list(self.processes.items()) if process.alive()}
        running |= {f"generator ({name})": p for name, p in list(self.generators.items()) if p.alive()}
        return {name: process.process.pid for name, process in running.items() if process.process is not None}

    def calibrate(self, backlog: ServiceProcess) -> Calibration:
        """Until the backlog is generated and every group committed all of it, each group's committed records and
        lag every second; then each stage's rate while it was behind (``deploy.chaos_load``)."""
        groups = [(name, *group) for name in self.consumers() for group in self.groups(name)]
        samples: dict[str, list[GroupSample]] = {group: [] for _, _, group, _ in groups}
        deadline = time.monotonic() + self.options.drain_timeout_s
        while True:
            self.supervise()
            behind: set[str] = set()
            for name, config, group, names in groups:
                probe = self.probes.setdefault(config["bootstrap.servers"], ClusterProbe(config))
                committed = sum(max(offset, 0) for offset in probe.committed(group, names).values())
                lag = sum(probe.end_offsets(names).values()) - committed
                samples[group].append(GroupSample(time.monotonic(), committed, lag))
                if lag > 0:
                    behind.add(name)
            services_done = not backlog.alive() and not behind.intersection(self.options.services)
            if services_done and ("flink" not in behind or self._flink_read()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the backlog was not worked off within {self.options.drain_timeout_s:.0f}s")
            time.sleep(1.0)
        calibration = Calibration(self.options.events)
        for name, _, group, _ in groups:
            rate, busy = busy_rate(samples[group])
            records = samples[group][-1].committed
            share = records / self.options.events
            calibration.stages.append(StageRate(name, group.removeprefix(self.prefix), records, share, rate, busy))
        return calibration

    def _flink_read(self) -> bool:
        """Whether every window job's group committed its whole source (Flink commits the offset after the last
        record it read, short of a transactional topic's trailing commit markers: against the readable ends)."""
        assert self.flink is not None
        return self.flink.behind(self.local_config()) == 0

    # -- the world ---------------------------------------------------------------------------------------------
    def generate(self, name: str, seed: int, *args: str, **settings: str) -> ServiceProcess:
        """A generator run on the run's topics (the direct addresses of the run's clusters)."""
        env = _with_remote({**self.env, "KAFKA_BOOTSTRAP_SERVERS": self.local_direct}, self.remote_env())
        env |= {"STARTUP_TIMEOUT_S": "120", **settings}
        process = ServiceProcess(
            "services.generator",
            env,
            self.logs / f"generator-{name}.log",
            *("--seed", str(seed), "--topic-prefix", self.prefix, *args),
        )
        self.generators[name] = process
        return process.start()

    def backlog(self) -> ServiceProcess:
        """``events`` events at full speed, their simulated time ending now: the backlog the faults hit."""
        events = self.options.events
        start = GeneratorSettings().backlog_start(events, int(time.time() * 1000)).isoformat()
        return self.generate("backlog", self.options.seed, "--events", str(events), "--no-pace", "--start", start)

    def stream(self, duration_s: float, rate: float | None) -> ServiceProcess:
        """A paced stream from now on while the faults come, so every group keeps getting records (``rate``
        events/s in the generator's mix; None: its default rates)."""
        now = dt.datetime.now(dt.UTC).isoformat()
        args = ("--duration", f"{duration_s:.0f}", "--pace", "--start", now)
        rates = {} if rate is None else paced_rates(rate)
        return self.generate("stream", self.options.seed + 1, *args, **rates)

    def ensure_topics(self) -> None:
        """Every catalogue topic under the run's prefix, before any service subscribes (a consumer sees a topic
        created after it subscribed only at its next metadata refresh, minutes later)."""
        for cluster, config in (("local", self.local_config()), ("remote", self.remote_config())):
            specs = load_catalogue().on_cluster(cluster)
            wanted = [(self.t(spec.name), spec.partitions, spec.topic_config()) for spec in specs]
            ensure_topics(KafkaSettings.from_client_config(config), wanted)

    # -- faults ------------------------------------------------------------------------------------------------
    def kinds(self) -> list[tuple[str, str]]:
        """Every kind of fault this run can inject, each with its target."""
        services = self.options.services
        kinds = [("kill", name) for name in services] + [("down", "registry")]
        kinds += [("down", t) for t in TARGETS if f"sink_{t}" in services]
        if self.options.private_kafka:
            kinds += [("broker-kill", name) for name in BROKERS]
            kinds += [("latency", "kafka"), ("bandwidth", "kafka"), ("reset", "kafka")]
        if self.flink is not None:
            kinds.append(("restart", "flink"))
        wanted = self.options.fault_kinds
        return [kind for kind in kinds if wanted is None or kind[0] in wanted]

    def timeline(self) -> list[tuple[float, tuple[str, str]]]:
        """The run's faults and their moments (seconds after the stream began): see ``fault_timeline``."""
        duration = None if self.options.minutes is None else self.options.minutes * 60
        return fault_timeline(self.kinds(), self.options, duration, self.random)

    def hit(self, kind: str, target: str) -> list[str]:
        """The services whose groups a fault hits (for the lag at the fault)."""
        if kind == "kill":
            return [target]
        if target in TARGETS:
            return [f"sink_{target}"]
        if target == "flink":
            return ["flink"]
        if target == "remote-kafka":  # the remote cluster's only consumer
            return [name for name in self.options.services if name == "mirror"]
        return self.consumers()

    def lag_before(self, kind: str, target: str) -> int | None:
        """The lag of the groups a fault hits, waiting a little for some (the stream keeps bringing records)."""
        deadline = time.monotonic() + self.options.lag_wait_s
        while True:
            lag = self.lag(self.hit(kind, target))
            if lag != 0 or time.monotonic() > deadline:
                return lag
            time.sleep(0.05)

    def inject(self, kind: str, target: str, schedule: Callable[[float, Callable[[], None]], None]) -> Fault:
        lag = self.lag_before(kind, target)  # measured first: the fault must find work in flight
        fault = Fault(time.monotonic() - self.started, kind, target, lag)
        if kind == "kill":
            self.processes[target].kill()
            self.down.add(target)
            pause = self.random.uniform(0.5, 3.0)
            fault.note = f"restarted after {pause:.1f}s"
            fault.outage_s = pause
            schedule(pause, lambda: self._restart(target))
            return fault
        outage = self.options.outage(target)
        if kind == "down":
            proxy = self.proxies[target]
            proxy.disable()
            fault.note = f"connections reset and refused for {outage:.0f}s"
            fault.outage_s = outage
            schedule(outage, proxy.enable)
        elif kind == "broker-kill":
            broker = self.brokers[target]
            broker.kill()
            killed = time.monotonic()
            # its probe's client would spend its timeouts on the dead connection after the restart: a new one will
            self.probes.pop(broker.direct, None)
            pause = self.random.uniform(2.0, 6.0)
            fault.note = f"SIGKILL, restarted after {pause:.1f}s"
            schedule(pause, lambda: self._restart_broker(broker, fault, killed))
        elif kind == "restart":
            assert self.flink is not None
            self.flink.restart(self.service_env(), fault)
        else:
            proxy = self.proxies[target]
            attributes = {
                "latency": {"latency": 300, "jitter": 200},
                "bandwidth": {"rate": 64},
                "reset": {"timeout": 0},
            }
            toxic_kind = {"latency": "latency", "bandwidth": "bandwidth", "reset": "reset_peer"}[kind]
            duration = outage if kind != "reset" else min(outage, RESET_S)
            names = [proxy.add_toxic(toxic_kind, stream, attributes[kind]) for stream in ("downstream", "upstream")]
            fault.note = f"{toxic_kind} {attributes[kind]} both ways for {duration:.0f}s"
            fault.outage_s = duration

            def cure() -> None:
                for name in names:
                    proxy.remove_toxic(name)

            schedule(duration, cure)
        return fault

    def _restart_broker(self, broker: PrivateBroker, fault: Fault, killed: float) -> None:
        """Start a killed broker again in a thread of its own (its start-up takes half a minute here), so the cures
        due meanwhile keep their moments; the next fault waits until it answers (``brokers_up``)."""

        def start() -> None:
            try:
                broker.start()
                fault.outage_s = time.monotonic() - killed
            except Exception as error:  # raised again by the run's loop
                self.failures.append(error)

        thread = threading.Thread(target=start, name=f"restart-{broker.name}", daemon=True)
        self.restarting.append(thread)
        thread.start()

    def _restart(self, name: str) -> None:
        if name in self.down:
            self.down.discard(name)
            self.exited_at.pop(name, None)
            self.processes[name] = self.service(name).start()

    def supervise(self) -> None:
        """Start again a service that exited on its own (as an orchestrator would, after a back-off), and a
        generator burst that could not reach the broker (the same seed: the same events)."""
        now = time.monotonic()
        for name, process in self.processes.items():
            if name in self.down or process.alive():
                continue
            if name not in self.exited_at:
                self.exited_at[name] = now
                assert process.process is not None
                self.result.restarts[f"{name} (exit {process.process.returncode})"] += 1
            elif now - self.exited_at[name] >= RESTART_BACKOFF_S:
                del self.exited_at[name]
                self.processes[name] = self.service(name).start()
        for name, process in list(self.generators.items()):
            if process.process is not None and process.process.poll() == UNREACHABLE_AT_START:
                self.result.restarts[f"generator {name}"] += 1  # it produced nothing: run it again
                process.start()

    def run(self) -> ChaosResult:
        mark = time.monotonic()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            self.result.phases[name] = now - mark
            mark = now

        self.setup()
        self.ensure_topics()
        if self.flink is not None:  # once its topics exist (the broker would create a missing one on a fetch)
            console.print("chaos: submitting the window jobs")
            self.flink.start(self.service_env())  # in the background, while the backlog and services start
        phase("set-up")
        backlog = self.backlog()
        self.processes = {name: self.service(name).start() for name in self.options.services}
        self.sampler.start()
        timeline = self.timeline()
        if self.options.load_factor is not None:  # measured from now on, the window jobs' submission under way
            console.print("chaos: measuring the rate each stage sustains while the backlog is worked off")
            self.result.calibration = self.calibrate(backlog)
            sustained = self.result.calibration.sustained
            if sustained is None:
                raise RuntimeError("no stage was busy long enough over the backlog to measure its rate: more --events")
            self.result.stream_rate = self.options.load_factor * sustained
            console.print(
                f"chaos: the slowest stage keeps up with {sustained:,.0f} events/s; the stream paces at "
                f"{self.result.stream_rate:,.0f}"
            )
        else:
            self.result.stream_rate = self.options.rate
            while backlog.alive():  # the faults come once the backlog is there, while the services work on it
                self.supervise()
                time.sleep(0.2)
        phase("backlog")
        if self.flink is not None:  # its submission went on meanwhile; the faults wait for it
            self.flink.wait()
            phase("flink submission")
        self.started = time.monotonic()
        timed = self.options.minutes is not None
        # without a duration the stream runs until the faults are over (a broker's restart can take a minute)
        stream_s = self.options.minutes * 60 if self.options.minutes is not None else UNTIL_STOPPED_S
        stream = self.stream(stream_s, self.result.stream_rate)
        pending: list[tuple[float, Callable[[], None]]] = []

        def schedule(delay: float, action: Callable[[], None]) -> None:
            pending.append((time.monotonic() - self.started + delay, action))

        queue = list(timeline)
        while queue or pending or not self.brokers_up() or (timed and stream.alive()):
            if self.failures:
                raise RuntimeError("a broker of the run did not start again") from self.failures[0]
            now = time.monotonic() - self.started
            for item in sorted((p for p in pending if p[0] <= now), key=lambda p: p[0]):
                pending.remove(item)
                item[1]()
            # the next fault once the run's brokers are back: a fault while one is down would measure no lag
            if queue and queue[0][0] <= now and self.brokers_up():
                _, (kind, target) = queue.pop(0)
                fault = self.inject(kind, target, schedule)
                self.result.faults.append(fault)
                console.print(f"chaos: {fault.at_s:6.1f}s {kind} {target} (lag {fault.lag}) {fault.note}")
            self.supervise()
            time.sleep(0.1)
        if not timed:
            time.sleep(2.0)  # records after the last cure too
            stream.stop()  # SIGTERM: it stops between records, everything it reports produced
        self.result.stream_s = time.monotonic() - self.started
        phase("stream and faults")
        self.result.drained = self.drain()
        phase("drain")
        if self.flink is not None and self.result.drained:
            self.flink.finish(self.local_config(), self.service_env())
            phase("flink drain")
        peaks = {f"generator ({name})": scheduled_peak(run.log) for name, run in self.generators.items()}
        self.result.memory = [replace(row, scheduled=peaks.get(row.service, 0)) for row in self.sampler.rows()]
        self.result.counts = self.count()
        phase("count")
        self.result.elapsed_s = sum(self.result.phases.values())
        return self.result

    def drain(self) -> bool:
        """Wait for the generator runs to end, then until every group committed everything; stop the services."""
        self.toxiproxy.client.reset()
        deadline = time.monotonic() + self.options.drain_timeout_s
        drained = False
        while time.monotonic() < deadline:
            self.supervise()
            generating = any(process.alive() for process in self.generators.values())
            if not generating and self.lag(self.options.services) == 0:
                drained = True
                break
            time.sleep(1.0)
        self.result.lag_left = {name: self.lag([name]) for name in self.options.services}
        self.sampler.stop()  # the RSS at the end: before the services stop
        for name, process in self.processes.items():
            if process.stop() != 0:
                self.result.restarts[f"{name} (non-zero exit on SIGTERM)"] += 1
        return drained

    # -- counting ----------------------------------------------------------------------------------------------
    def count(self) -> list[StageCount]:
        serde = AvroSerde(registry_client(SchemaRegistrySettings.from_mapping(self.env)))
        local = self.direct_env

        def ids(env: Mapping[str, str], topic: str, path: tuple[str, ...] = ("metadata",)) -> list[str]:
            found = []
            for _key, value, _ts in read_topic(env, topic):
                if value is None:
                    continue
                record: Any = serde.decode(value)
                for part in path:
                    record = record[part]
                found.append(str(record["event_id"]))
            return found

        upstream = ids(remote_kafka_env(self.remote_env()), self.t(topics.UPSTREAM_PRODUCT_VIEWS))
        views = ids(local, self.t(topics.PRODUCT_VIEWS))
        raw = {name: ids(local, self.t(name)) for name in LOCAL_RAW}
        self.result.generated = len(upstream) + sum(len(raw[name]) for name in LOCAL_RAW)
        raw[topics.PRODUCT_VIEWS] = views
        counts = [
            count_ids("generator -> remote (product views)", self.t(topics.UPSTREAM_PRODUCT_VIEWS), upstream, upstream)
        ]
        running = set(self.options.services)
        if "mirror" in running:
            counts.append(count_ids("mirror", self.t(topics.PRODUCT_VIEWS), upstream, views))
        for kind, source in SOURCE_TOPICS.items() if "enricher" in running else ():
            output = OUTPUT_TOPICS[kind]
            counts.append(
                count_ids("enricher", self.t(output), raw[source], ids(local, self.t(output), ("event", "metadata")))
            )
        if "anomaly_detector" in running:
            counts.append(
                count_ids(
                    "anomaly detector (repartition)",
                    self.t(DETECTOR_INPUT),
                    self._used(serde, local),
                    ids(local, self.t(DETECTOR_INPUT)),
                )
            )
        if "sink_mongodb" in running:
            counts.append(count_ids("sink_mongodb", f"{self.database}.{MONGO_COLLECTION}", views, self._mongo_ids()))
        hdfs = hdfs_store(HdfsSettings.from_mapping(self.env))
        for name in HDFS_TOPICS if "sink_hdfs" in running else ():
            counts.append(
                count_ids(
                    "sink_hdfs",
                    f"{self.hdfs_root}/{self.t(name)}",
                    raw[name],
                    _file_ids(hdfs, self.hdfs_root, self.t(name)),
                )
            )
        gcs = GcsStore(gcs_client(GcsSettings.from_mapping(self.env)), self.bucket)
        for name in GCS_TOPICS if "sink_gcs" in running else ():
            counts.append(
                count_ids(
                    "sink_gcs", f"gs://{self.bucket}/raw/{self.t(name)}", raw[name], _file_ids(gcs, "raw", self.t(name))
                )
            )
        if self.flink is not None and self.result.drained:
            self.result.windows = self.flink.count(local, self.env["POSTGRES_DSN"])
        return counts

    def _used(self, serde: AvroSerde, env: Mapping[str, str]) -> list[str]:
        """The ids of the raw records a detector uses (those stage 1 re-keys onto the repartition topic)."""
        used = []
        for source in INPUT_TOPICS:
            for _key, value, _ts in read_topic(env, self.t(source)):
                if value is not None:
                    event = serde.decode(value)
                    if detector_input(source, event, 0, 0) is not None:
                        used.append(str(event["metadata"]["event_id"]))
        return used

    def _mongo_ids(self) -> list[str]:
        client = mongo_client(MongoSettings.from_mapping(self.env))
        try:
            docs = client[self.database][MONGO_COLLECTION].find({}, {"metadata.event_id": 1})
            return [str(doc["metadata"]["event_id"]) for doc in docs]
        finally:
            client.close()

    # -- clean-up ----------------------------------------------------------------------------------------------
    def close(self, keep_data: bool = False) -> None:
        self.sampler.stop()
        if self.flink is not None:
            self.flink.close(self.env, keep_data)
        for process in [*self.processes.values(), *self.generators.values()]:
            with contextlib.suppress(Exception):
                process.stop(10)
        for thread in self.restarting:  # a restart under way ends (its start times out) before its broker stops
            thread.join(PRIVATE_BROKER_START_S + 10)
        for broker in self.brokers.values():
            broker.stop()
            if not keep_data:
                broker.remove()
        with contextlib.suppress(Exception):
            self.toxiproxy.stop()
        if keep_data:
            return
        with contextlib.suppress(Exception):
            self._remove_targets()

    def _remove_targets(self) -> None:
        client = mongo_client(MongoSettings.from_mapping(self.env))
        try:
            client.drop_database(self.database)
        finally:
            client.close()
        hdfs = hdfs_store(HdfsSettings.from_mapping(self.env))
        hdfs.client.delete(self.hdfs_root, recursive=True)
        gcs = GcsStore(gcs_client(GcsSettings.from_mapping(self.env)), self.bucket)
        for blob in gcs.client.list_blobs(gcs.bucket):
            blob.delete()
        gcs.bucket.delete()
        clusters = []  # the stack's clusters: the run's topics go (a private broker's data went with it)
        if "remote-kafka" not in self.brokers:
            clusters.append(remote_client_config(self.env))
        if "kafka" not in self.brokers:
            clusters.append(self.local_config())
        for config in clusters:
            admin = AdminClient(dict[str, Any](config))
            names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(self.prefix)]
            for future in admin.delete_topics(names).values() if names else ():
                future.result(30)


def _with_remote(env: Mapping[str, str], remote: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``remote``'s ``REMOTE_KAFKA_*`` settings in place of its own."""
    return {**{key: value for key, value in env.items() if not key.startswith("REMOTE_KAFKA_")}, **remote}


def _netloc(url: str) -> str:
    """``host:port`` of ``url`` (without the credentials it may carry)."""
    return url.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2]


def _via(url: str, address: str) -> str:
    """``url`` (its scheme, credentials and path kept) through the proxy listening on ``address``."""
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    credentials, at, _ = netloc.rpartition("@")
    return f"{scheme}://{credentials}{at}{address}{slash}{path}"


def _file_ids(store: FileStore, root: str, topic: str) -> list[str]:
    """The event ids of every record in the committed files of ``topic`` under ``root``."""
    return [
        str(record["metadata"]["event_id"])  # type: ignore[call-overload,index]
        for item in committed_files(store, root, topic)
        for record in fastavro.reader(io.BytesIO(store.read(item.path)))
    ]


def windows_table(windows: list[WindowCount]) -> Table:
    table = Table(title="Flink window jobs: every window of the run's events against the oracle, where it landed")
    for column in ("job", "destination", "expected", "delivered", "lost", "duplicated", "differing", "late events"):
        table.add_column(column, justify="left" if column in ("job", "destination") else "right")
    for c in windows:
        lost = f"[bold red]{c.lost:,}[/]" if c.lost else "0"
        table.add_row(
            c.job,
            c.destination,
            f"{c.expected:,}",
            f"{c.delivered:,}",
            lost,
            f"{c.duplicated:,}",
            str(c.differing),
            f"{c.late:,}",
        )
    return table


def fault_timeline(
    kinds: list[tuple[str, str]], options: ChaosOptions, duration_s: float | None, rng: random.Random
) -> list[tuple[float, tuple[str, str]]]:
    """The faults of a run and their moments in seconds: every kind once in a seeded order, then again, cycling.

    Without a duration, ``options.faults`` of them, each a seeded gap (``gap_s``) after the one before. With one,
    at least ``options.faults`` (none when it is 0), or as many as fit (an outage plus a mean gap each, the longest
    outage of the run) in the stream's ``duration_s`` short of one outage, so the last one's outage ends within the
    stream: that window cut in equal slots, a fault at a seeded random moment of each, early enough in it for its
    outage to end there."""
    order = list(kinds)
    rng.shuffle(order)
    if duration_s is None:
        count = options.faults
        times, moment = [], 0.0
        for _ in range(count):
            moment += rng.uniform(*options.gap_s)
            times.append(moment)
    else:
        outage = options.longest_outage_s
        window = max(duration_s - outage, 0.0)
        fit = int(window // (outage + sum(options.gap_s) / 2))
        count = max(options.faults, fit) if options.faults else 0
        width = window / count if count else 0.0
        times = [i * width + rng.uniform(0.0, max(width - outage, 0.0)) for i in range(count)]
    return [(times[i], order[i % len(order)]) for i in range(count)]


def count_ids(stage: str, destination: str, expected: Iterable[str], delivered: Iterable[str]) -> StageCount:
    """``delivered`` against ``expected`` (the stage's input, as a multiset): lost ids, ids nobody sent, and the
    duplicates the stage added (copies beyond the input's own repeats, which an earlier stage made)."""
    wanted, got = Counter(expected), Counter(delivered)
    return StageCount(
        stage=stage,
        destination=destination,
        expected=len(wanted),
        delivered=len(wanted.keys() & got.keys()),
        lost=len(wanted.keys() - got.keys()),
        duplicated=sum(max(0, n - max(wanted[i], 1)) for i, n in got.items()),
        unexpected=len(got.keys() - wanted.keys()),
    )


def run_chaos(env: Mapping[str, str], options: ChaosOptions, *, keep_data: bool = False) -> ChaosResult:
    """One chaos run against the running stack ``env`` describes (its ``stack.env``)."""
    harness = Harness(StackContext.create(StackSettings()), env, options)
    try:
        return harness.run()
    finally:
        harness.close(keep_data)


def chaos_command(
    events: Annotated[
        int, typer.Option(help="Events of the backlog the faults hit (a paced stream follows).")
    ] = 20_000,
    faults: Annotated[
        int,
        typer.Option(
            help="Faults to inject: every kind once, then again, cycling; with --minutes at least this many, as "
            "many as fit (0: none)."
        ),
    ] = 12,
    minutes: Annotated[
        float | None, typer.Option(help="Run the paced stream this long, the faults spread over it.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Events/s of the paced stream (default: the generator's rates).")
    ] = None,
    load_factor: Annotated[
        float | None,
        typer.Option(help="Pace the stream at this many times the rate the slowest stage sustained over the backlog."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the world and of the fault timeline.")] = 1,
    outage_s: Annotated[
        float | None,
        typer.Option(
            help="Seconds every outage and toxic lasts (default: the registry 20 s; MongoDB, HDFS and GCS 30 s; "
            "a toxic 20 s, a reset toxic 3 s)."
        ),
    ] = None,
    private_kafka: Annotated[
        bool, typer.Option(help="Run the local and the remote cluster as brokers of the run's own.")
    ] = True,
    flink: Annotated[
        bool, typer.Option(help="Run the Flink window jobs too (when the stack has a Flink cluster).")
    ] = True,
    keep_data: Annotated[bool, typer.Option(help="Keep the run's topics and targets afterwards.")] = False,
    stack_env: Annotated[
        Path | None, typer.Option(help="A running stack's stack.env (default: this checkout's).")
    ] = None,
) -> None:
    """Run the pipeline through faults and count every event at every stage by id, with every service's memory
    (exit 1 on a lost event, a group not drained or a service over its memory bound)."""
    path = stack_env or StackContext.create(StackSettings()).paths.env_file
    if not path.exists():
        console.print(f"chaos: no running stack ({path} is missing): run freightline up first")
        raise typer.Exit(code=2)
    env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    # the drain works off what the stream left: up to the whole stream when it outpaces the pipeline
    drain_timeout_s = max(ChaosOptions.drain_timeout_s, 2 * 60 * (minutes or 0) * (load_factor or 1))
    try:
        options = ChaosOptions(
            events=events,
            faults=faults,
            seed=seed,
            outage_s=outage_s,
            private_kafka=private_kafka,
            minutes=minutes,
            rate=rate,
            load_factor=load_factor,
            drain_timeout_s=drain_timeout_s,
            flink=flink,
        )
    except ValueError as error:
        console.print(f"chaos: {error}")
        raise typer.Exit(code=2) from error
    result = run_chaos(env, options, keep_data=keep_data)
    out = Console(width=160)
    for table in result.tables():
        out.print(table)
    restarts = ", ".join(f"{k}={v}" for k, v in sorted(result.restarts.items())) or "none"
    phases = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in result.phases.items())
    out.print(result.stream_line())
    out.print(f"run {result.run_id}: {result.elapsed_s:.0f}s ({phases}); restarts after an exit: {restarts}")
    if not result.drained:
        out.print(f"[bold red]the groups did not drain[/]: lag left {result.lag_left}")
    if exceeded := result.memory_exceeded():
        out.print(f"[bold red]over their memory bound[/]: {', '.join(exceeded)}")
    if result.lost() or not result.drained or exceeded:
        raise typer.Exit(code=1)
