"""The roles of a stack's registry, checked through the endpoints the stack exports: the admin in
``SCHEMA_REGISTRY_URL`` does everything, the read-only user of ``SCHEMA_REGISTRY_READ_ONLY_USER_INFO`` fetches
schemas but is refused (403, error code 40301) every change, and a request without credentials gets 401."""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
FORBIDDEN_CODE = 40301
UNAUTHORIZED_CODE = 40101


def record_schema(name: str, *fields: str) -> dict[str, str]:
    return {
        "schema": json.dumps(
            {
                "type": "record",
                "name": name,
                "fields": [{"name": field, "type": ["null", "string"], "default": None} for field in fields],
            }
        )
    }


def split_url(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its credentials, and the credentials it carried."""
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return bare, (parts.username, parts.password or "") if parts.username else None


def clients(env: Mapping[str, str]) -> tuple[httpx.Client, httpx.Client, httpx.Client]:
    """(admin, read-only, anonymous) HTTP clients of the stack's registry (its CA trusted when it serves HTTPS)."""
    base, admin = split_url(env["SCHEMA_REGISTRY_URL"])
    assert admin is not None, "SCHEMA_REGISTRY_URL carries no admin credentials"
    reader = tuple(env["SCHEMA_REGISTRY_READ_ONLY_USER_INFO"].split(":", 1))
    assert len(reader) == 2 and reader[0] != admin[0]
    ca = env.get("SCHEMA_REGISTRY_SSL_CA_LOCATION")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
    options = {"base_url": base, "headers": CT, "timeout": 30.0, "verify": verify}
    return (
        httpx.Client(auth=admin, **options),  # type: ignore[arg-type]
        httpx.Client(auth=(reader[0], reader[1]), **options),  # type: ignore[arg-type]
        httpx.Client(**options),  # type: ignore[arg-type]
    )


def check_roles(env: Mapping[str, str], subject: str) -> None:
    """Every role's rights on ``subject`` (a fresh one), asserted."""
    first, second = record_schema("Parcel", "id"), record_schema("Parcel", "id", "note")
    admin, reader, anonymous = clients(env)
    with admin, reader, anonymous:
        # The read-only user fetches what the admin registered.
        registered = admin.post(f"/subjects/{subject}/versions", json=first)
        assert registered.status_code == 200, registered.text
        schema_id = registered.json()["id"]
        assert json.loads(reader.get(f"/schemas/ids/{schema_id}").json()["schema"]) == json.loads(first["schema"])
        assert reader.get(f"/subjects/{subject}/versions/latest").json()["id"] == schema_id
        assert reader.post(f"/subjects/{subject}", json=first).json()["id"] == schema_id  # a look-up changes nothing
        assert reader.get(f"/config/{subject}", params={"defaultToGlobal": "true"}).status_code == 200

        # ... and is refused every change: register, compatibility, delete (Confluent's error shape).
        refused = {
            "register": reader.post(f"/subjects/{subject}/versions", json=second),
            "compatibility": reader.put(f"/config/{subject}", json={"compatibility": "NONE"}),
            "delete version": reader.delete(f"/subjects/{subject}/versions/1"),
            "delete subject": reader.delete(f"/subjects/{subject}"),
        }
        for change, response in refused.items():
            assert response.status_code == 403, (change, response.status_code, response.text)
            assert response.json()["error_code"] == FORBIDDEN_CODE, (change, response.text)
            assert isinstance(response.json()["message"], str)
        assert admin.get(f"/subjects/{subject}/versions").json() == [1]  # nothing changed

        # Without credentials: 401, for reads and changes alike.
        for response in (
            anonymous.get(f"/schemas/ids/{schema_id}"),
            anonymous.post(f"/subjects/{subject}/versions", json=second),
        ):
            assert response.status_code == 401, response.text
            assert response.json()["error_code"] == UNAUTHORIZED_CODE

        # The admin does each change the read-only user was refused.
        assert admin.put(f"/config/{subject}", json={"compatibility": "NONE"}).json() == {"compatibility": "NONE"}
        assert admin.post(f"/subjects/{subject}/versions", json=second).status_code == 200
        assert admin.get(f"/subjects/{subject}/versions").json() == [1, 2]
        assert admin.delete(f"/subjects/{subject}/versions/1").json() == 1
        assert admin.delete(f"/subjects/{subject}").json() == [2]
        assert admin.delete(f"/subjects/{subject}", params={"permanent": "true"}).status_code == 200
