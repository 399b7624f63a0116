"""observability/METRICS.md against the metric families every service really registers."""

from __future__ import annotations

from deploy.metrics_targets import SERVICES
from tests.unit.observability.catalogue import CATALOGUE, Family, catalogue, exposed


def services_exposing() -> dict[Family, set[str]]:
    found: dict[Family, set[str]] = {}
    for target in SERVICES:
        families, rendered = exposed(target.name)
        assert {f.name for f in families} == rendered, f"{target.name}: families outside its metric holders"
        for family in families:
            found.setdefault(family, set()).add(target.name)
    return found


def test_the_catalogue_lists_every_family_the_services_expose_and_nothing_else() -> None:
    listed = catalogue(CATALOGUE.read_text())
    found = services_exposing()
    assert sorted(f.name for f in set(found) - set(listed)) == [], "exposed but not in METRICS.md (or different)"
    assert sorted(f.name for f in set(listed) - set(found)) == [], "in METRICS.md but not exposed (or different)"
    assert {f.name: sorted(s) for f, s in listed.items()} == {f.name: sorted(s) for f, s in found.items()}


def test_catalogue_parsing_reads_types_labels_and_services() -> None:
    text = (
        "| `a_total` | counter | service, topic | every service | x |\n"
        "| `b` | gauge | - | mirror, enricher | y |\n"
        "not a row\n"
    )
    rows = catalogue(text)
    assert rows[Family("b", "gauge", ())] == {"mirror", "enricher"}
    assert rows[Family("a_total", "counter", ("service", "topic"))] == {
        t.name for t in SERVICES if t.name != "schema_registry"
    }
