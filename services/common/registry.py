"""A small client of a Confluent-compatible Schema Registry's REST API: what the services ask of it, nothing more.

The services need five calls (register a schema under a subject, look one up, fetch a schema by id, the subjects of
an id, a subject's compatibility level), each made once per schema and process (``AvroSerde`` and the mirror's
translator cache the answers). confluent-kafka's ``SchemaRegistryClient`` does the same over httpx, authlib and
their dependencies, which cost a service seconds of CPU at every start (``python -X importtime``) before it can
consume again after a crash; this client is the standard library's ``http.client`` (about 25 ms to import).

Errors are ``SchemaRegistryError`` with the HTTP status and the registry's ``error_code``, as the registry reports them
(``{"error_code": 40403, "message": "Schema not found"}``). Requests are retried, with a short back-off, when the
registry cannot be reached or answers 408, 429 or 5xx (it may be restarting), as confluent-kafka's client does.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPT = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class SchemaRegistryError(Exception):
    """The registry refused a request (or could not be reached: ``http_status_code`` -1)."""

    def __init__(self, http_status_code: int, error_code: int, error_message: str) -> None:
        super().__init__(f"{error_message} (HTTP status code {http_status_code}, SR code {error_code})")
        self.http_status_code = http_status_code
        self.error_code = error_code
        self.error_message = error_message


@dataclass(frozen=True)
class Schema:
    """A schema as the registry holds it: its text, type and references (``{"name", "subject", "version"}``)."""

    schema_str: str
    schema_type: str = "AVRO"
    references: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schema": self.schema_str}
        if self.schema_type and self.schema_type != "AVRO":
            body["schemaType"] = self.schema_type
        if self.references:
            body["references"] = [_reference_dict(ref) for ref in self.references]
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Schema:
        return cls(
            str(body.get("schema", "")),
            str(body.get("schemaType") or "AVRO"),
            tuple(body.get("references") or ()),
        )


@dataclass(frozen=True)
class RegisteredSchema:
    schema_id: int
    schema: Schema
    subject: str
    version: int


def _reference_dict(reference: Any) -> dict[str, Any]:
    if isinstance(reference, Mapping):
        return dict(reference)
    return {"name": reference.name, "subject": reference.subject, "version": reference.version}


class RegistryClient:
    """Calls on one registry (``url``: ``http(s)://host:port[/path]``), optionally with HTTP basic auth."""

    def __init__(
        self,
        url: str,
        *,
        basic_auth_user_info: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        retry_backoff_s: float = 0.2,
    ) -> None:
        base = url.split(",")[0].strip()
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"schema registry url {base!r} is not an http(s) URL")
        self.url = base
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/")
        self._timeout_s = timeout_s
        self._retries = retries
        self._retry_backoff_s = retry_backoff_s
        self._headers = {"Accept": ACCEPT, "Content-Type": CONTENT_TYPE}
        user_info = basic_auth_user_info
        if user_info is None and parts.username is not None:
            user_info = f"{parts.username}:{parts.password or ''}"
        if user_info:
            token = base64.b64encode(user_info.encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> RegistryClient:
        """From confluent-kafka's configuration keys (``url``, ``basic.auth.user.info``)."""
        return cls(config["url"], basic_auth_user_info=config.get("basic.auth.user.info"))

    # --- the calls the services make ---------------------------------------------------------------------------

    def register_schema(self, subject_name: str, schema: Any, normalize_schemas: bool = False) -> int:
        """Register ``schema`` under ``subject_name`` (the existing id when it is already there)."""
        body = self._request(
            "POST",
            f"/subjects/{_segment(subject_name)}/versions",
            {"normalize": _flag(normalize_schemas)},
            _schema_body(schema),
        )
        return int(body["id"])

    def lookup_schema(
        self, subject_name: str, schema: Any, normalize_schemas: bool = False, deleted: bool = False
    ) -> RegisteredSchema:
        """The version of ``subject_name`` that is ``schema``; 40403 when there is none."""
        body = self._request(
            "POST",
            f"/subjects/{_segment(subject_name)}",
            {"normalize": _flag(normalize_schemas), "deleted": _flag(deleted)},
            _schema_body(schema),
        )
        return RegisteredSchema(
            schema_id=int(body["id"]),
            schema=Schema.from_dict(body),
            subject=str(body.get("subject") or subject_name),
            version=int(body.get("version") or 0),
        )

    def get_schema(self, schema_id: int, subject_name: str | None = None) -> Schema:
        query = {} if subject_name is None else {"subject": subject_name}
        return Schema.from_dict(self._request("GET", f"/schemas/ids/{int(schema_id)}", query))

    def get_subjects_by_schema_id(
        self, schema_id: int, subject_name: str | None = None, deleted: bool = False
    ) -> list[str]:
        query: dict[str, str] = {}
        if subject_name is not None:
            query["subject"] = subject_name
        if deleted:
            query["deleted"] = "true"
        return [str(subject) for subject in self._request("GET", f"/schemas/ids/{int(schema_id)}/subjects", query)]

    def set_compatibility(self, subject_name: str | None = None, level: str | None = None) -> str:
        if level is None:
            raise ValueError("level must be set")
        path = "/config" if subject_name is None else f"/config/{_segment(subject_name)}"
        body = self._request("PUT", path, {}, {"compatibility": level.upper()})
        return str(body.get("compatibility") or body.get("compatibilityLevel") or level.upper())

    def get_compatibility(self, subject_name: str | None = None) -> str:
        path = "/config" if subject_name is None else f"/config/{_segment(subject_name)}"
        body = self._request("GET", path, {})
        return str(body["compatibilityLevel"])

    # --- transport ---------------------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout_s)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)

    def _request(self, method: str, path: str, query: Mapping[str, str], body: Any = None) -> Any:
        target = self._path + path + (f"?{urlencode(query)}" if query else "")
        payload = None if body is None else json.dumps(body).encode()
        attempt = 0
        while True:
            try:
                status, data = self._exchange(method, target, payload)
            except OSError as error:  # refused, reset, timed out, name resolution
                if attempt >= self._retries:
                    raise SchemaRegistryError(-1, -1, f"{method} {self.url}{path}: {error!r}") from error
            else:
                if status < 400:
                    return json.loads(data) if data else {}
                if status not in RETRIED_STATUSES or attempt >= self._retries:
                    raise _error(status, data)
            time.sleep(self._retry_backoff_s * 2**attempt)
            attempt += 1

    def _exchange(self, method: str, target: str, payload: bytes | None) -> tuple[int, bytes]:
        connection = self._connection()
        try:
            connection.request(method, target, body=payload, headers=self._headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def _error(status: int, data: bytes) -> SchemaRegistryError:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return SchemaRegistryError(status, int(body.get("error_code", status)), str(body.get("message", "")))
    return SchemaRegistryError(status, status, data.decode("utf-8", "replace")[:200] or f"HTTP {status}")


def _schema_body(schema: Any) -> dict[str, Any]:
    """A request body from our ``Schema`` or any object with ``schema_str``/``schema_type``/``references``."""
    if isinstance(schema, Schema):
        return schema.to_dict()
    references = tuple(getattr(schema, "references", ()) or ())
    return Schema(schema.schema_str, getattr(schema, "schema_type", None) or "AVRO", references).to_dict()


def _segment(name: str) -> str:
    return quote(name, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"
