"""``freightline dlq list|show|replay TOPIC``: inspect and replay a dead-letter topic (``services.common.dlq``).

``TOPIC`` is a dead-letter topic (``<source>.dlq``) or its source topic. The cluster and the registry come from the
usual settings (``KAFKA_*``, ``SCHEMA_REGISTRY_*``). On a cluster that takes logins (a ``SASL_*`` protocol: the
secure stack) the tool is its own principal of the ACL table (``deploy/local/kafka_acls.py``): ``list`` and ``show``
read as ``dlq_reader``, ``replay`` as ``dlq_replay``, and both decode as the registry's read-only user, every one of
these credentials read from the stack's secrets folder (``<FREIGHTLINE_HOME>/secrets``), never from the environment
(whose ``KAFKA_SASL_*`` and registry URL carry the stack's admin).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer
from confluent_kafka import KafkaException
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from deploy.local.components import SchemaRegistry, kafka_user_secret
from deploy.local.context import StackContext
from deploy.local.kafka_acls import DLQ_READER, DLQ_REPLAY
from deploy.local.settings import StackSettings
from deploy.processes import without_credentials
from services.common import dlq
from services.common.serde import AvroSerde, registry_client
from services.common.settings import KafkaSettings, SchemaRegistrySettings

dlq_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead-letter topics.")
out = Console(width=200)

Topic = Annotated[str, typer.Argument(help="Dead-letter topic (<source>.dlq) or its source topic.")]
Reason = Annotated[list[str] | None, typer.Option("--reason", help="Only this error type (repeatable).")]
Since = Annotated[str | None, typer.Option(help="Failed at or after (ISO 8601, UTC by default, or epoch ms).")]
Until = Annotated[str | None, typer.Option(help="Failed at or before (ISO 8601 or epoch ms).")]
SourcePartition = Annotated[int | None, typer.Option(help="Only dead letters from this source partition.")]
FromOffset = Annotated[int | None, typer.Option(help="Source offset at least this.")]
ToOffset = Annotated[int | None, typer.Option(help="Source offset at most this.")]


FILTERS = {
    "reason": Reason,
    "since": Since,
    "until": Until,
    "source_partition": SourcePartition,
    "from_offset": FromOffset,
    "to_offset": ToOffset,
}


def with_selection(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` (which takes ``selection``) with the filter options instead: the one place they are declared."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "selection"]
    filters = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a) for n, a in FILTERS.items()
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        values = {name: kwargs.pop(name) for name in FILTERS}
        try:
            selection = dlq.Selection(
                reasons=frozenset(values["reason"] or ()),
                since=dlq.parse_time(values["since"]) if values["since"] else None,
                until=dlq.parse_time(values["until"]) if values["until"] else None,
                source_partition=values["source_partition"],
                from_offset=values["from_offset"],
                to_offset=values["to_offset"],
            )
        except ValueError as error:
            raise typer.BadParameter(f"--since/--until: {error}") from None
        command(selection=selection, **kwargs)

    wrapper.__signature__ = inspect.Signature([*own, *filters])  # type: ignore[attr-defined]
    return wrapper


def as_principal(
    principal: str, kafka: KafkaSettings, registry: SchemaRegistrySettings, stack: StackSettings
) -> tuple[KafkaSettings, SchemaRegistrySettings]:
    """``kafka`` and ``registry`` as the tool's ``principal`` when the cluster takes logins: its SCRAM user and the
    registry's read-only user, their passwords from the stack's secrets folder (``MissingSecret`` when one is not
    there); unchanged on a cluster without logins (the plain stack: no users, no ACLs)."""
    if not kafka.security_protocol.startswith("SASL"):
        return kafka, registry
    secrets = StackContext.create(stack).paths
    password = secrets.stored_secret(kafka_user_secret(principal))
    reader = SchemaRegistry.READ_ONLY_USER
    reader_password = secrets.stored_secret(SchemaRegistry.secret_name(reader))
    return (
        kafka.model_copy(update={"sasl_username": principal, "sasl_password": SecretStr(password)}),
        registry.model_copy(
            update={
                "url": without_credentials(registry.url),
                "basic_auth_user_info": SecretStr(f"{reader}:{reader_password}"),
                "auto_register_schemas": False,
            }
        ),
    )


def _read(topic: str, principal: str) -> tuple[KafkaSettings, list[dlq.DeadLetter]]:
    kafka, registry = as_principal(principal, KafkaSettings(), SchemaRegistrySettings(), StackSettings())
    serde = AvroSerde(registry_client(registry), auto_register=False)
    return kafka, dlq.read_dead_letters(kafka, serde, dlq.dlq_topic_of(topic))


def refused(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` ending with one line and exit code 1 when a credential is missing, a target is wrong or the cluster
    refuses the principal (an ACL: the topic is outside its rows), instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
            return
        except (ValueError, RuntimeError, KafkaException) as error:  # MissingSecret is a ValueError
            message = str(error)
        # outside the handler: the error, its traceback and the clients its frames hold are released now
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=1)

    return wrapper


def _time(value: dt.datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dlq_app.command("list")
@with_selection
@refused
def list_(topic: Topic, selection: dlq.Selection) -> None:
    """One line per dead letter: its place, its source, when and why it failed, whether it was replayed."""
    kafka, letters = _read(topic, DLQ_READER)
    selected = dlq.select(letters, selection)
    ledger = dlq.replayed_keys(kafka, dlq.dlq_topic_of(topic))
    table = Table(title=f"{dlq.dlq_topic_of(topic)}: {len(selected)} of {len(letters)} dead letters")
    for column in ("partition:offset", "source", "failed at", "reason", "service", "replayed to", "error"):
        table.add_column(column, overflow="fold")
    for letter in selected:
        replayed = ledger.get(letter.key)
        table.add_row(
            letter.key,
            f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}",
            _time(letter.failed_at),
            letter.reason,
            str(letter.envelope.get("service") or ""),
            str(replayed["target"]) if replayed else "",
            str(letter.envelope.get("error_message") or "")[:80],
        )
    out.print(table)
    counts: dict[str, int] = {}
    for letter in selected:
        counts[letter.reason] = counts.get(letter.reason, 0) + 1
    typer.echo("by reason: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))


@dlq_app.command("show")
@refused
def show(
    topic: Topic,
    offset: Annotated[int, typer.Argument(help="Offset of the dead letter in the dead-letter topic.")],
    partition: Annotated[int, typer.Option(help="Partition of the dead-letter topic.")] = 0,
) -> None:
    """Everything one dead letter holds: source, error and stack, original key, headers and value (hex head)."""
    kafka, letters = _read(topic, DLQ_READER)
    found = [letter for letter in letters if (letter.partition, letter.offset) == (partition, offset)]
    if not found:
        typer.echo(f"no dead letter at {dlq.dlq_topic_of(topic)}[{partition}]@{offset}", err=True)
        raise typer.Exit(code=1)
    letter = found[0]
    envelope = letter.envelope
    value = envelope.get("original_value") or b""
    replayed = dlq.replayed_keys(kafka, letter.topic).get(letter.key)
    lines = [
        f"dead letter     {letter.topic}[{letter.partition}]@{letter.offset}",
        f"source          {letter.source_topic}[{letter.source_partition}]@{letter.source_offset}",
        f"failed at       {_time(letter.failed_at)} in {envelope.get('service')} (attempts {envelope.get('attempts')})",
        f"reason          {letter.reason}",
        f"message         {envelope.get('error_message')}",
        f"original key    {envelope.get('original_key')!r}",
        f"original value  {len(value)} bytes: {value[:64].hex()}{'...' if len(value) > 64 else ''}",
        "headers         " + (", ".join(f"{k}={v!r}" for k, v in letter.original_headers()) or "none"),
        f"replayed        {replayed if replayed else 'no'}",
    ]
    typer.echo("\n".join(lines))
    if envelope.get("error_stack"):
        typer.echo("stack\n" + str(envelope["error_stack"]))


@dlq_app.command("replay")
@with_selection
@refused
def replay(
    topic: Topic,
    to: Annotated[str | None, typer.Option(help="Publish to this topic instead of each record's source topic.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Say what would be replayed; publish nothing.")] = False,
    *,
    selection: dlq.Selection,
) -> None:
    """Re-publish the selected dead letters' original bytes, exactly once (a transactional ledger: see
    ``services/common/dlq.py``); those already replayed are skipped."""
    kafka, letters = _read(topic, DLQ_REPLAY)
    selected = dlq.select(letters, selection)
    result = dlq.replay(kafka, selected, to=to, dry_run=dry_run)
    verb = "would replay" if dry_run else "replayed"
    targets = ", ".join(f"{count} to {target}" for target, count in sorted(result.targets.items())) or "nothing"
    typer.echo(
        f"{dlq.dlq_topic_of(topic)}: {result.selected} selected of {len(letters)}, "
        f"{len(result.already_replayed)} already replayed, {verb} {len(result.replayed)} ({targets})"
    )
