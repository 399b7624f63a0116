"""The topic catalogue and the Avro contracts, as every service uses them.

>>> from schemas.catalogue import load_catalogue, schema_text
>>> orders = load_catalogue().topic("commerce.orders.v1")
>>> orders.subject, orders.key_field
('commerce.orders.v1-value', 'order_id')
>>> text = schema_text(orders.value_schema)   # what is registered under orders.subject

Nothing is read at import time: each call reads the packaged files (schema texts are cached per process).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from schemas.conversion import from_json
from schemas.loader import DirectorySource, expand, to_text

PACKAGE_DIR = Path(__file__).resolve().parent
AVRO_DIR = PACKAGE_DIR / "avro"
EXAMPLES_DIR = PACKAGE_DIR / "examples"
CATALOGUE_PATH = PACKAGE_DIR / "catalogue.yaml"

DEFAULT_COMPATIBILITY = "BACKWARD_TRANSITIVE"
COMPATIBILITY_LEVELS = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)
CLUSTERS = frozenset({"local", "remote"})
CLEANUP_POLICIES = frozenset({"delete", "compact"})

Cluster = Literal["local", "remote"]
CleanupPolicy = Literal["delete", "compact"]


class CatalogueError(ValueError):
    """The catalogue file is malformed or names an unknown topic."""


@dataclass(frozen=True)
class TopicSpec:
    """One Kafka topic: where it lives, how it is keyed, its value contract and configuration.

    ``key_field`` names the value field whose text is the record key (a dotted path for nested fields).
    """

    name: str
    cluster: str
    key_field: str
    value_schema: str
    partitions: int
    cleanup_policy: str
    retention_ms: int | None
    compatibility: str
    owner: str
    description: str

    @property
    def subject(self) -> str:
        """Schema Registry subject of the value (TopicNameStrategy)."""
        return f"{self.name}-value"

    @property
    def is_dead_letter(self) -> bool:
        return self.name.endswith(".dlq")

    def topic_config(self) -> dict[str, str]:
        """Kafka topic configuration entries (for AdminClient.create_topics)."""
        config = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


@dataclass(frozen=True)
class Catalogue:
    """Every topic of the platform, in catalogue order."""

    topics: tuple[TopicSpec, ...]

    def topic(self, name: str) -> TopicSpec:
        for spec in self.topics:
            if spec.name == name:
                return spec
        raise CatalogueError(f"topic {name!r} is not in the catalogue")

    def on_cluster(self, cluster: str) -> tuple[TopicSpec, ...]:
        return tuple(spec for spec in self.topics if spec.cluster == cluster)

    def dead_letter_for(self, source_topic: str) -> TopicSpec:
        """The dead-letter topic of ``source_topic`` (``<source topic>.dlq``)."""
        self.topic(source_topic)
        return self.topic(f"{source_topic}.dlq")


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate the catalogue (default: the packaged ``schemas/catalogue.yaml``)."""
    source = path or CATALOGUE_PATH
    with source.open(encoding="utf-8") as handle:
        return parse_catalogue(yaml.safe_load(handle), origin=str(source))


def parse_catalogue(document: Any, origin: str = "catalogue") -> Catalogue:
    """Build a :class:`Catalogue` from the parsed YAML document (also used for committed versions)."""
    if not isinstance(document, dict) or not isinstance(document.get("topics"), list):
        raise CatalogueError(f"{origin}: expected a mapping with a 'topics' list")
    defaults = document.get("defaults") or {}
    default_level = str(defaults.get("compatibility", DEFAULT_COMPATIBILITY))
    specs: list[TopicSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["topics"]):
        where = f"{origin}: topics[{index}]"
        if not isinstance(entry, dict):
            raise CatalogueError(f"{where}: expected a mapping")
        try:
            spec = TopicSpec(
                name=_text(entry, "name", where),
                cluster=_text(entry, "cluster", where),
                key_field=_text(entry, "key", where),
                value_schema=_text(entry, "value_schema", where),
                partitions=int(entry["partitions"]),
                cleanup_policy=_text(entry, "cleanup_policy", where),
                retention_ms=None if entry.get("retention_ms") is None else int(entry["retention_ms"]),
                compatibility=str(entry.get("compatibility", default_level)).upper(),
                owner=_text(entry, "owner", where),
                description=" ".join(_text(entry, "description", where).split()),
            )
        except KeyError as error:
            raise CatalogueError(f"{where}: missing {error.args[0]!r}") from error
        _validate(spec, where)
        if spec.name in seen:
            raise CatalogueError(f"{where}: topic {spec.name!r} is listed twice")
        seen.add(spec.name)
        specs.append(spec)
    return Catalogue(topics=tuple(specs))


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{where}: {key!r} must be a non-empty string")
    return value


def _validate(spec: TopicSpec, where: str) -> None:
    problems = []
    if spec.cluster not in CLUSTERS:
        problems.append(f"cluster must be one of {sorted(CLUSTERS)}")
    if spec.cleanup_policy not in CLEANUP_POLICIES:
        problems.append(f"cleanup_policy must be one of {sorted(CLEANUP_POLICIES)}")
    if spec.cleanup_policy == "delete" and spec.retention_ms is None:
        problems.append("a 'delete' topic needs retention_ms")
    if spec.cleanup_policy == "compact" and spec.retention_ms is not None:
        problems.append("a compacted topic keeps every key: drop retention_ms")
    if spec.partitions < 1:
        problems.append("partitions must be at least 1")
    if spec.compatibility not in COMPATIBILITY_LEVELS:
        problems.append(f"compatibility must be one of {sorted(COMPATIBILITY_LEVELS)}")
    if problems:
        raise CatalogueError(f"{where} ({spec.name}): " + "; ".join(problems))


@functools.cache
def _packaged_text(full_name: str) -> str:
    return to_text(expand(full_name, DirectorySource(AVRO_DIR)))


def load_schema(full_name: str) -> dict[str, Any]:
    """The fully expanded, self-contained schema of ``full_name`` (a fresh dict, ready for parse_schema)."""
    expanded: dict[str, Any] = json.loads(_packaged_text(full_name))
    return expanded


def schema_text(full_name: str) -> str:
    """Canonical compact JSON of the expanded schema: the text registered for a topic's value subject."""
    return _packaged_text(full_name)


def all_schema_names() -> list[str]:
    """Full names of every named type that has its own schema file, sorted."""
    return DirectorySource(AVRO_DIR).names()


def example_path(full_name: str, examples_dir: Path | None = None) -> Path:
    return (examples_dir or EXAMPLES_DIR) / f"{full_name}.json"


def example(full_name: str) -> dict[str, Any]:
    """The packaged example of ``full_name`` as a Python record fastavro can write (see conversion.py)."""
    with example_path(full_name).open(encoding="utf-8") as handle:
        document = json.load(handle)
    record = from_json(load_schema(full_name), document)
    if not isinstance(record, dict):
        raise TypeError(f"the example of {full_name} is not a record")
    return record
