"""State survives restarts; two processes on one database never hand out conflicting ids or versions."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.registry import RegistryProcess

pytestmark = pytest.mark.integration

CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def body(name: str, extra_fields: int = 0) -> dict[str, str]:
    fields = [{"name": "id", "type": "string"}] + [
        {"name": f"f{i}", "type": ["null", "long"], "default": None} for i in range(extra_fields)
    ]
    return {"schema": json.dumps({"type": "record", "name": name, "fields": fields})}


def test_state_survives_restart(start_registry: Callable[..., RegistryProcess]) -> None:
    server = start_registry()
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        first = http.post("/subjects/restart-value/versions", json=body("Restart"), headers=CT).json()["id"]
        second = http.post("/subjects/restart-value/versions", json=body("Restart", 1), headers=CT).json()["id"]
        http.put("/config/restart-value", json={"compatibility": "FULL"}, headers=CT)
        assert http.delete("/subjects/restart-value/versions/1").json() == 1
        http.put("/mode/restart-value", json={"mode": "READONLY"}, headers=CT)
    # Graceful SIGTERM: uvicorn drains, then ends with the signal it received.
    assert server.stop() in (0, -signal.SIGTERM)
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        assert http.get("/subjects").json() == ["restart-value"]
        assert http.get("/subjects/restart-value/versions").json() == [2]
        assert http.get("/subjects/restart-value/versions?deleted=true").json() == [1, 2]
        assert http.get("/subjects/restart-value/versions/latest").json()["id"] == second
        assert json.loads(http.get(f"/schemas/ids/{first}").json()["schema"])["name"] == "Restart"
        assert http.get("/config/restart-value").json() == {"compatibilityLevel": "FULL"}
        assert http.get("/mode/restart-value").json() == {"mode": "READONLY"}
        http.put("/mode/restart-value", json={"mode": "READWRITE"}, headers=CT)
        # A new schema continues the id sequence; a known one keeps its id.
        third = http.post("/subjects/restart-value/versions", json=body("Restart", 2), headers=CT).json()["id"]
        assert third == max(first, second) + 1
        assert http.post("/subjects/other-value/versions", json=body("Restart"), headers=CT).json()["id"] == first


def test_two_instances_never_conflict(start_registry: Callable[..., RegistryProcess]) -> None:
    one = start_registry()
    two = start_registry(dsn=one.dsn)
    subjects = [f"race-{i}-value" for i in range(4)]
    # Every subject gets versions 0..5 (compatible evolutions) from both instances at once; a few schemas
    # are shared between subjects so the same text must get one id whichever instance registers it.
    jobs = [(subject, n) for subject in subjects for n in range(6)]

    def submit(job: tuple[str, int], server: RegistryProcess) -> tuple[str, int, int]:
        subject, n = job
        name = "Shared" if n == 0 else f"Race{subject.split('-')[1]}"
        with httpx.Client(base_url=server.url, timeout=60.0) as http:
            response = http.post(f"/subjects/{subject}/versions", json=body(name, n), headers=CT)
        assert response.status_code in (200, 409), response.text
        return subject, n, response.json().get("id", -1)

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(submit, job, one) for job in jobs] + [pool.submit(submit, job, two) for job in jobs]
        results = [f.result() for f in futures]

    ids_by_text: dict[tuple[str, int], set[int]] = {}
    for subject, n, schema_id in results:
        if schema_id != -1:
            key = ("Shared", 0) if n == 0 else (subject, n)
            ids_by_text.setdefault(key, set()).add(schema_id)
    # One id per distinct schema text, whichever instance answered, and distinct texts never share an id.
    assert all(len(ids) == 1 for ids in ids_by_text.values()), ids_by_text
    all_ids = [next(iter(ids)) for ids in ids_by_text.values()]
    assert len(all_ids) == len(set(all_ids))

    with httpx.Client(base_url=one.url, timeout=30.0) as http:
        for subject in subjects:
            versions = http.get(f"/subjects/{subject}/versions").json()
            assert versions == list(range(1, len(versions) + 1))
            seen_ids = [http.get(f"/subjects/{subject}/versions/{v}").json()["id"] for v in versions]
            assert len(seen_ids) == len(set(seen_ids))
        for server in (one, two):
            with httpx.Client(base_url=server.url, timeout=30.0) as other:
                for schema_id in all_ids:
                    assert other.get(f"/schemas/ids/{schema_id}").status_code == 200
    assert one.alive() and two.alive()
