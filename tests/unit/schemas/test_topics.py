from __future__ import annotations

from schemas import topics
from schemas.catalogue import load_catalogue


def test_the_topic_constants_are_the_catalogue() -> None:
    catalogue = {spec.name for spec in load_catalogue().topics if not spec.name.endswith(".dlq")}
    assert topics.declared() == catalogue
