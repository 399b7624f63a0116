"""The secure stack's broker (``FREIGHTLINE_SECURE``): SASL_SSL with SCRAM-SHA-512 and the ACL table.

A private broker of this module (its own ports and state directory, started by the stack's own component class)
proves that a client with the CA and the right credentials produces and consumes; that a wrong password, an
untrusted CA and plaintext to the TLS port are each refused with a clear error; and, row by row, that each principal
of ``deploy.local.kafka_acls`` can do its own work and is refused a neighbour's; and that ``freightline dlq`` lists
and replays as its own two principals, with only their credentials, and is refused what their rows do not grant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, ScramMechanism, UserScramCredentialDeletion
from typer.testing import CliRunner, Result

from deploy.dlq import dlq_app
from deploy.local import kafka_acls
from deploy.local.components import (
    KafkaBroker,
    SchemaRegistry,
    kafka_user_password,
    kafka_user_secret,
    service_kafka_env,
)
from deploy.local.context import StackContext
from deploy.local.kafka_acls import Access
from deploy.local.stack import Stack
from deploy.local.tls import PrivateCA
from deploy.processes import ServiceProcess, last_json_line
from schemas import topics
from schemas.catalogue import load_schema
from services.common.deadletter import DEAD_LETTER_SCHEMA, dead_letter_topic
from services.common.dlq import REPLAY_OF_HEADER, read_messages, replayed_keys
from services.common.kafka import end_positions, headers_of
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from stream_processors.oracle import read_committed
from tests.integration.stack.support import private_stack_context

pytestmark = pytest.mark.integration

PORTS = ("kafka_port", "kafka_controller_port", "kafka_metrics_port")
HANG_GUARD_S = 30.0
ROWS = kafka_acls.access_table()
DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED
UNLISTED = "secure.unlisted"
"""A topic no row names: no ACL at all, so nobody but the super users may use it."""


@dataclass
class SecureBroker:
    ctx: StackContext
    broker: KafkaBroker
    env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    def config(self, principal: str) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, **self.broker.principal_config(self.ctx, principal)}


def probe_name(prefix: str) -> str:
    return f"{prefix}probe"


def row_topics(row: Access) -> tuple[list[str], list[str]]:
    """(topics it may read, topics it may write), a probe topic under each topic prefix included."""
    extra = [probe_name(prefix) for resource, prefix in row.prefixes.items() if resource == "topic"]
    return [*row.reads, *extra], [*row.writes, *extra]


def row_groups(row: Access) -> list[str]:
    return [*row.groups, *(probe_name(p) for r, p in row.prefixes.items() if r == "group")]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A secure single-node broker holding every topic of the table (one record each), with the ACLs of both
    clusters' rows (the remote rows name topics no local row does)."""
    ctx = private_stack_context(tmp_path_factory.mktemp("kafka-secure"), PORTS)
    ctx = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"secure": True, "kafka_heap": "512m"}))
    broker = KafkaBroker("kafka", sasl=False)
    stack = Stack(ctx, [broker])
    env = stack.up()
    try:
        secure = SecureBroker(ctx, broker, env)
        admin_config = secure.config(kafka_acls.ADMIN)
        admin = AdminClient(admin_config)
        for future in admin.create_acls(kafka_acls.bindings(kafka_acls.REMOTE)).values():
            future.result()
        names = sorted({UNLISTED, *(t for row in ROWS for t in (*row_topics(row)[0], *row_topics(row)[1]))})
        for future in admin.create_topics([NewTopic(t, 1, 1) for t in names]).values():
            future.result()
        producer = Producer(admin_config)
        for topic in names:
            producer.produce(topic, b"seed")
        assert producer.flush(HANG_GUARD_S) == 0
        yield secure
    finally:
        stack.down()


# -- probes: what a principal's client gets back ------------------------------------------------------------
def produce(config: Mapping[str, Any], names: list[str]) -> dict[str, KafkaError | None]:
    """Topic -> the delivery error of one record produced to it (None: delivered)."""
    results: dict[str, KafkaError | None] = {}

    def delivered(error: KafkaError | None, message: Any) -> None:
        results[message.topic()] = error

    producer = Producer({**config, "message.timeout.ms": int(HANG_GUARD_S * 1000)})
    for topic in names:
        producer.produce(topic, b"probe", on_delivery=delivered)
    assert producer.flush(HANG_GUARD_S + 5) == 0, "hang guard: deliveries still pending"
    return results


def consume(config: Mapping[str, Any], names: list[str]) -> dict[str, KafkaError | None]:
    """Topic -> the error of reading its first record (None: read), without a group's offsets. A topic the
    principal may not even describe answers the metadata request with the authorization error."""
    consumer = Consumer({**config, "group.id": "unused", "enable.auto.commit": False})
    results: dict[str, KafkaError | None] = {}
    try:
        for topic in names:
            error = consumer.list_topics(topic, timeout=HANG_GUARD_S).topics[topic].error
            if error is not None:
                results[topic] = error
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING) for topic in names if topic not in results])
        deadline = time.monotonic() + HANG_GUARD_S
        while len(results) < len(names):
            assert time.monotonic() < deadline, f"hang guard: no answer for {set(names) - set(results)}"
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                continue
            name = message.topic()
            if name is not None:
                results.setdefault(name, error)
    finally:
        consumer.close()
    return results


def commit(config: Mapping[str, Any], group: str, topic: str) -> KafkaError | None:
    """The error of committing an offset of ``topic`` for ``group`` (None: committed)."""
    admin = AdminClient({**config})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])
    try:
        admin.alter_consumer_group_offsets([request], request_timeout=HANG_GUARD_S)[group].result()
    except KafkaException as error:
        return error.args[0]
    return None


def init_transactions(config: Mapping[str, Any], transactional_id: str) -> KafkaError | None:
    producer = Producer({**config, "transactional.id": transactional_id})
    try:
        producer.init_transactions(HANG_GUARD_S)
    except KafkaException as error:
        return error.args[0]
    return None


@dataclass
class Attempt:
    """What a client reported while it tried to reach the cluster: its errors and its log lines."""

    errors: list[KafkaError] = dataclasses.field(default_factory=list)
    logs: list[str] = dataclasses.field(default_factory=list)

    def codes(self) -> set[int]:
        return {error.code() for error in self.errors}


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def attempt(config: Mapping[str, Any], done: Callable[[Attempt], bool]) -> Attempt:
    """Let a client with ``config`` try to reach the cluster until ``done`` holds for what it reported."""
    seen = Attempt()
    logger = logging.Logger(f"client-{time.monotonic_ns()}")
    logger.addHandler(_Lines(seen.logs))
    client: dict[str, Any] = {**config, "error_cb": seen.errors.append, "logger": logger}
    admin = AdminClient({**client, "reconnect.backoff.max.ms": 500})
    deadline = time.monotonic() + HANG_GUARD_S
    while not done(seen):
        assert time.monotonic() < deadline, f"hang guard: the client reported only {seen}"
        # the generic "failed to get metadata": the cause arrives through error_cb and the log
        with contextlib.suppress(KafkaException):
            admin.list_topics(timeout=1)
        admin.poll(0.1)
    return seen


def reported_error(config: Mapping[str, Any], code: int) -> KafkaError:
    """The error of kind ``code`` a client with ``config`` reports while it tries to reach the cluster."""
    seen = attempt(config, lambda seen: code in seen.codes())
    return next(error for error in seen.errors if error.code() == code)


# -- encryption and authentication ----------------------------------------------------------------------------
def test_a_client_with_the_ca_and_its_credentials_produces_and_consumes(secure: SecureBroker) -> None:
    """The stack's exported settings (``stack.env``) are all a client needs."""
    settings = KafkaSettings.from_mapping(secure.env)
    config: dict[str, Any] = {**settings.client_config()}
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert Path(config["ssl.ca.location"]) == secure.ctx.tls.cert
    topic = "secure.roundtrip"
    admin = AdminClient(config)
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    producer = Producer(config)
    for i in range(3):
        producer.produce(topic, f"record-{i}".encode())
    assert producer.flush(HANG_GUARD_S) == 0
    consumer = Consumer({**config, "group.id": "secure-roundtrip", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + HANG_GUARD_S
    try:
        while len(values) < 3:
            assert time.monotonic() < deadline, "hang guard"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
    finally:
        consumer.close()
    assert values == [b"record-0", b"record-1", b"record-2"]


def test_a_wrong_password_is_refused(secure: SecureBroker) -> None:
    config = {**secure.config(kafka_acls.ENRICHER), "sasl.password": "not-the-password"}  # pragma: allowlist secret
    error = reported_error(config, KafkaError._AUTHENTICATION)
    assert "Authentication failed during authentication due to invalid credentials" in error.str()


def test_an_untrusted_certificate_authority_is_refused(secure: SecureBroker, tmp_path: Path) -> None:
    other = PrivateCA(tmp_path / "other-ca").ensure()
    error = reported_error({**secure.config(kafka_acls.ADMIN), "ssl.ca.location": str(other)}, KafkaError._SSL)
    assert "certificate verify failed" in error.str()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_plaintext_to_the_tls_port_is_refused(secure: SecureBroker, protocol: str) -> None:
    """The broker ends the handshake it cannot read (its log names the failed TLS handshake); the client, cut off
    while asking for the API versions, reports the broker down and never gets metadata."""
    config: dict[str, Any] = {**secure.config(kafka_acls.ADMIN), "security.protocol": protocol}
    config.pop("ssl.ca.location")
    if protocol == "PLAINTEXT":
        config = {"bootstrap.servers": secure.bootstrap, "security.protocol": protocol}
    broker_log = secure.ctx.paths.log(secure.broker.name)
    start = broker_log.stat().st_size
    cut_off = "Disconnected: connection closed by peer"

    def refused(seen: Attempt) -> bool:
        return KafkaError._ALL_BROKERS_DOWN in seen.codes() and any(cut_off in line for line in seen.logs)

    seen = attempt(config, refused)
    assert any("in state APIVERSION_QUERY" in line for line in seen.logs if cut_off in line)
    deadline = time.monotonic() + HANG_GUARD_S
    while "(SSL handshake failed)" not in broker_log.read_text(errors="replace")[start:]:
        assert time.monotonic() < deadline, "hang guard: the broker logged no failed TLS handshake"
        time.sleep(0.2)


# -- authorization: the ACL table, row by row -----------------------------------------------------------------
def _row_id(row: Access) -> str:
    return f"{row.principal}@{row.cluster}"


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_each_principal_may_do_its_own_work(secure: SecureBroker, row: Access) -> None:
    config = secure.config(row.principal)
    reads, writes = row_topics(row)
    assert produce(config, writes) == dict.fromkeys(writes)
    if reads:
        assert consume(config, reads) == dict.fromkeys(reads)
    for group in row_groups(row):
        assert commit(config, group, reads[0]) is None, group
    for prefix in row.transactional_ids:
        assert init_transactions(config, probe_name(prefix)) is None, prefix


def code(error: KafkaError | None) -> int | None:
    return None if error is None else error.code()


def neighbour(own: list[str], others: list[str]) -> str:
    """The first of ``others`` (another row's) that ``own`` does not hold."""
    return next(name for name in others if name not in own)


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_each_principal_is_refused_its_neighbours_work(secure: SecureBroker, row: Access) -> None:
    config = secure.config(row.principal)
    same = [r for r in ROWS if r.principal == row.principal]
    reads = [t for r in same for t in row_topics(r)[0]]
    writes = [t for r in same for t in row_topics(r)[1]]
    others = [r for r in ROWS if r.principal != row.principal]
    foreign_write = neighbour(writes, [t for r in others for t in row_topics(r)[1]])
    foreign_read = neighbour(reads, [t for r in others for t in row_topics(r)[0]])
    assert code(produce(config, [foreign_write])[foreign_write]) == DENIED
    assert code(consume(config, [foreign_read])[foreign_read]) == DENIED
    own_topic = (reads or [foreign_read])[0]
    foreign_group = neighbour([g for r in same for g in row_groups(r)], [g for r in others for g in row_groups(r)])
    assert code(commit(config, foreign_group, own_topic)) == KafkaError.GROUP_AUTHORIZATION_FAILED
    own_ids = [p for r in same for p in r.transactional_ids]
    foreign_id = neighbour(own_ids, [p for r in others for p in r.transactional_ids])
    assert code(init_transactions(config, probe_name(foreign_id))) == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


@pytest.mark.parametrize(
    ("principal", "action", "topic"),
    [
        (kafka_acls.ENRICHER, "write", topics.SUPPLIER_INVOICES),  # the GCS sink's input
        (kafka_acls.ENRICHER, "write", dead_letter_topic(topics.SUPPLIER_PAYMENTS)),  # the GCS sink's DLQ
        (kafka_acls.MIRROR, "read", topics.SUPPLIER_INVOICES),
        (kafka_acls.MIRROR, "read", topics.SUPPLIER_PAYMENTS),
        ("sink_mongodb", "write", dead_letter_topic(topics.SUPPLIER_INVOICES)),  # the GCS sink's DLQ
        ("sink_gcs", "write", dead_letter_topic(topics.CLICKSTREAM)),  # the HDFS sink's DLQ
        ("sink_hdfs", "read", topics.SUPPLIER_PAYMENTS),
        (kafka_acls.GENERATOR, "read", topics.ORDERS),  # it writes the raw events, it does not read them
        (kafka_acls.ENRICHER, "read", UNLISTED),  # no ACL found: denied (allow.everyone.if.no.acl.found=false)
        (kafka_acls.ENRICHER, "write", UNLISTED),
    ],
)
def test_named_refusals(secure: SecureBroker, principal: str, action: str, topic: str) -> None:
    probe = produce if action == "write" else consume
    assert code(probe(secure.config(principal), [topic])[topic]) == DENIED


def test_a_committed_read_of_a_topic_the_principal_may_not_read_fails_rather_than_reads_nothing(
    secure: SecureBroker,
) -> None:
    """The reconciliation and the oracles read a topic's committed records (``read_committed``); a principal refused
    the topic gets no partitions in its metadata, which must not pass for an empty topic."""
    late = topics.LATE_EVENTS
    assert late in next(row for row in ROWS if row.principal == kafka_acls.BATCH).reads
    env = {**secure.env, "KAFKA_SASL_USERNAME": "sink_gcs"}
    env["KAFKA_SASL_PASSWORD"] = kafka_user_password(secure.ctx, "sink_gcs")
    with pytest.raises(RuntimeError, match="TOPIC_AUTHORIZATION_FAILED"):
        read_committed(env, late)


# -- a real service with no more than its row -----------------------------------------------------------------
def test_the_generator_runs_as_its_own_principal(secure: SecureBroker, registry_url: str, tmp_path: Path) -> None:
    """The generator, given only its own principal (the broker stands for both clusters), writes every topic of its
    rows: each topic grows by exactly what the generator reports."""
    env = {
        **secure.env,
        **{f"REMOTE_{key}": value for key, value in secure.env.items() if key.startswith("KAFKA_")},
        **service_kafka_env(secure.ctx, kafka_acls.GENERATOR),
        "SCHEMA_REGISTRY_URL": registry_url,
        "LOG_LEVEL": "WARNING",
    }
    written = [t for row in ROWS if row.principal == kafka_acls.GENERATOR for t in row.writes]
    before = end_positions(secure.env, written)  # as admin (the stack's exported settings)
    generator = ServiceProcess(
        "services.generator", env, tmp_path / "generator.log", "--events", "300", "--no-pace", "--seed", "7"
    ).start(capture_stdout=True)
    code, stdout = generator.wait(timeout=HANG_GUARD_S * 4)
    assert code == 0, (tmp_path / "generator.log").read_text()[-3000:]
    reported = {topic: int(count) for topic, count in last_json_line(stdout)["topics"].items()}
    after = end_positions(secure.env, written)
    grown = {t: sum(after[t].values()) - sum(before[t].values()) for t in written}
    assert grown == {t: reported.get(t, 0) for t in written}
    assert grown[topics.UPSTREAM_PRODUCT_VIEWS] > 0 and grown[topics.ORDERS] > 0


def test_a_start_gives_every_principal_its_user_back(secure: SecureBroker) -> None:
    """A principal whose SCRAM user is gone (a row added after the format, a password file changed) logs in again
    once the broker's start-up sync ran, and the ACLs are the table's again (what no row of the cluster grants is
    removed)."""
    principal = "sink_gcs"
    config = secure.config(principal)
    admin = AdminClient(secure.config(kafka_acls.ADMIN))
    deletion = UserScramCredentialDeletion(principal, ScramMechanism.SCRAM_SHA_512)
    admin.alter_user_scram_credentials([deletion])[principal].result()
    reported_error(config, KafkaError._AUTHENTICATION)  # the user is gone: the login fails
    secure.broker.after_ready(secure.ctx)  # also makes the ACLs the local rows' only
    try:
        assert produce(config, [dead_letter_topic(topics.SUPPLIER_INVOICES)]) == {
            dead_letter_topic(topics.SUPPLIER_INVOICES): None
        }
        remote = consume(secure.config(kafka_acls.MIRROR), [topics.UPSTREAM_PRODUCT_VIEWS])
        assert code(remote[topics.UPSTREAM_PRODUCT_VIEWS]) == DENIED  # a remote row's grant, removed as stale
    finally:
        for future in admin.create_acls(kafka_acls.bindings(kafka_acls.REMOTE)).values():
            future.result()


# -- the dead-letter tool as its own principals ---------------------------------------------------------------
LETTERS = 12


def write_dead_letters(secure: SecureBroker, registry: SchemaRegistrySettings, source: str) -> list[bytes]:
    """``LETTERS`` dead letters of ``source`` on its dead-letter topic, as the only records there (the fixture's
    seed record deleted): returns their original values."""
    admin_config = secure.config(kafka_acls.ADMIN)
    topic = dead_letter_topic(source)
    end = end_positions(secure.env, [topic])[topic][0]
    admin = AdminClient(admin_config)  # kept referenced until its futures complete
    for future in admin.delete_records([TopicPartition(topic, 0, end)], request_timeout=HANG_GUARD_S).values():
        future.result(timeout=HANG_GUARD_S + 5)
    encoder = AvroSerde(registry_client(registry)).encoder(subject_for(topic), load_schema(DEAD_LETTER_SCHEMA))
    producer = Producer(admin_config)
    values = [f"order-{i}".encode() for i in range(LETTERS)]
    for offset, value in enumerate(values):
        envelope = {
            "original_key": f"key-{offset}".encode(),
            "original_value": value,
            "original_headers": [],
            "source_topic": source,
            "source_partition": 0,
            "source_offset": offset,
            "source_timestamp": None,
            "error_type": "unknown_schema",
            "error_message": "schema id 4242 not found",
            "error_stack": None,
            "service": "sink_hdfs",
            "failed_at": int(time.time() * 1000),
            "attempts": 1,
        }
        producer.produce(topic, encoder.encode(envelope), f"key-{offset}".encode())
    assert producer.flush(HANG_GUARD_S) == 0
    return values


def tool_home(secure: SecureBroker, home: Path, principal: str, registry_reader: str) -> dict[str, str]:
    """The tool's environment with a state directory whose secrets folder holds nothing but ``principal``'s
    password and the registry reader's; the environment still names the admin (``KAFKA_SASL_*``, the registry URL),
    as the stack's ``stack.env`` does."""
    secrets = home / "secrets"
    secrets.mkdir(parents=True)
    (secrets / kafka_user_secret(principal)).write_text(kafka_user_password(secure.ctx, principal))
    user, _, password = registry_reader.partition(":")
    (secrets / SchemaRegistry.secret_name(user)).write_text(password)
    return {"FREIGHTLINE_HOME": str(home)}


def dlq_tool(env: Mapping[str, str], *args: str) -> Result:
    return CliRunner().invoke(dlq_app, list(args), env=dict(env))


def test_the_dead_letter_tool_lists_and_replays_as_its_own_principals(
    secure: SecureBroker, stack_env: dict[str, str], tmp_path: Path
) -> None:
    """``list`` as ``dlq_reader`` and ``replay`` as ``dlq_replay``, each given only its own password: a replay to a
    topic outside the replayer's rows, or to one it may read but not write, is refused and leaves nothing behind;
    then the replay re-publishes every dead letter to its source, once (a repeated replay publishing nothing is
    ``tests/integration/sinks/test_dlq_replay.py``'s)."""
    source, topic = topics.ORDERS, dead_letter_topic(topics.ORDERS)
    registry = {k: v for k, v in stack_env.items() if k.startswith("SCHEMA_REGISTRY_")}
    values = write_dead_letters(secure, SchemaRegistrySettings.from_mapping(registry), source)
    env = {**registry, **secure.env}
    reader_info = stack_env["SCHEMA_REGISTRY_READ_ONLY_USER_INFO"]
    reading = {**env, **tool_home(secure, tmp_path / "reader", kafka_acls.DLQ_READER, reader_info)}
    replaying = {**env, **tool_home(secure, tmp_path / "replayer", kafka_acls.DLQ_REPLAY, reader_info)}

    listed = dlq_tool(reading, "list", topic)
    assert listed.exit_code == 0, listed.output
    assert f"{topic}: {LETTERS} of {LETTERS} dead letters" in listed.output
    assert f"by reason: unknown_schema {LETTERS}" in listed.output
    without = dlq_tool(reading, "replay", topic)  # the reader's home holds no replayer's password
    assert without.exit_code == 1 and kafka_user_secret(kafka_acls.DLQ_REPLAY) in without.output, without.output

    foreign = dlq_tool(replaying, "replay", topic, "--to", topics.ANOMALIES)  # the detector's output
    assert foreign.exit_code == 1 and "Topic authorization failed" in foreign.output, foreign.output
    unwritable = dead_letter_topic(topics.CLICKSTREAM)  # it reads every dead-letter topic, writes none
    refused = dlq_tool(replaying, "replay", topic, "--to", unwritable)
    assert refused.exit_code == 1 and "Topic authorization failed" in refused.output, refused.output
    admin = KafkaSettings.from_client_config(secure.config(kafka_acls.ADMIN))
    assert replayed_keys(admin, topic) == {}  # the refused transaction never committed: nor did its ledger entries

    replayed = dlq_tool(replaying, "replay", topic)
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {LETTERS} ({LETTERS} to {source})" in replayed.output
    republished = [
        message.value() or b""
        for message in read_messages(admin, source)
        if (dict(headers_of(message)).get(REPLAY_OF_HEADER) or b"").startswith(f"{topic}/".encode())
    ]
    assert sorted(republished) == sorted(values)
