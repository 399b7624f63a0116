"""The ACL table (``deploy/local/kafka_acls.py``) as the deployments' Kafka users: Strimzi ``KafkaUser`` ACLs on
Kubernetes, ``kafka-acls`` bindings in compose, and back (what a deployment grants, read from its files), so the
consistency checks compare each user with its rows.

The deployments grant exactly the rows of the local cluster but Create on the named topics: there the topics are
made by an operator (Strimzi's Topic Operator, compose's topic set-up service), never by a service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deploy.local import kafka_acls
from deploy.local.kafka_acls import Grant

STRIMZI_RESOURCES = {"topic": "topic", "group": "group", "transactional_id": "transactionalId", "broker": "cluster"}
"""The table's resource types (``kafka_acls.grants``) as Strimzi's ``KafkaUser`` names them."""
STRIMZI_PATTERNS = {"literal": "literal", "prefixed": "prefix"}
KAFKA_USERS = {kafka_acls.STREAM: "flink-jobs"}
"""A principal whose user has another name than the principal's own (``_`` is not allowed in a resource name)."""


def user_name(principal: str) -> str:
    """The Kafka user (and Strimzi principal) of a principal of the ACL table in the deployments."""
    return KAFKA_USERS.get(principal, principal.replace("_", "-"))


def deployed_principals() -> tuple[str, ...]:
    """Every principal with a row on the local cluster (the deployments' Kafka: the upstream cluster is not ours)."""
    return kafka_acls.principals(kafka_acls.LOCAL)


def table_grants(principal: str) -> set[Grant]:
    """What ``principal`` may do in a deployment: its local rows' grants without Create on the named topics."""
    found: set[Grant] = set()
    for row in kafka_acls.access_table():
        if row.principal == principal and row.cluster == kafka_acls.LOCAL:
            found |= kafka_acls.grants(row, create_topics=False)
    return found


def _camel(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def strimzi_acls(principal: str) -> list[dict[str, Any]]:
    """``principal``'s grants as the ``acls`` of a Strimzi ``KafkaUser`` (one entry per resource)."""
    by_resource: dict[tuple[str, str, str], set[str]] = {}
    for resource, name, pattern, operation in table_grants(principal):
        by_resource.setdefault((resource, name, pattern), set()).add(operation)
    acls = []
    for (resource, name, pattern), operations in sorted(by_resource.items()):
        target: dict[str, Any] = {"type": STRIMZI_RESOURCES[resource]}
        if resource != "broker":  # the cluster resource has no name
            target |= {"name": name, "patternType": STRIMZI_PATTERNS[pattern]}
        acls.append({"resource": target, "operations": sorted(map(_camel, operations)), "host": "*"})
    return acls


def strimzi_grants(acls: Iterable[Mapping[str, Any]]) -> set[Grant]:
    """What a ``KafkaUser``'s ``acls`` allow, as the table's grants (the inverse of ``strimzi_acls``)."""
    resources = {v: k for k, v in STRIMZI_RESOURCES.items()}
    patterns = {v: k for k, v in STRIMZI_PATTERNS.items()}
    found: set[Grant] = set()
    for acl in acls:
        resource = resources[acl["resource"]["type"]]
        name = acl["resource"].get("name", kafka_acls.CLUSTER_RESOURCE)
        pattern = patterns[acl["resource"].get("patternType", "literal")]
        for operation in acl["operations"]:
            snake = "".join(f"_{c}" if c.isupper() else c for c in operation).lstrip("_").upper()
            found.add((resource, name, pattern, snake))
    return found
