"""The HTTP layer: a lean ASGI application speaking Confluent's Schema Registry REST API.

Requests are routed by path segments (subjects are percent-decoded per segment, so ``%2F`` works). The hot
path, ``GET /schemas/ids/{id}``, answers from an in-memory cache of pre-encoded responses: schema ids are
immutable, so the cache never needs invalidating, and a hit touches neither the database nor a router.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
import psycopg
import psycopg_pool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from schemas.compatibility import CompatibilityLevel

from . import errors
from .errors import RegistryError
from .registry import Mode, Registry, parse_register_body, parse_version, schema_response, valid_subject
from .schemas import SUPPORTED_TYPES

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

V1 = "application/vnd.schemaregistry.v1+json"
ACCEPTED_BODY_TYPES = frozenset(
    {V1, "application/vnd.schemaregistry+json", "application/json", "application/octet-stream"}
)
PRODUCIBLE = (V1, "application/vnd.schemaregistry+json", "application/json")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
UNAUTHENTICATED = frozenset({"/healthz", "/readyz", "/metrics"})


class RegistryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "freightline_schema_registry_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "freightline_schema_registry_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registered = Counter(
            "freightline_schema_registry_schemas_registered_total",
            "Subject versions registered (new_schema = a new id was assigned).",
            ["new_schema"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "freightline_schema_registry_id_cache_hits_total",
            "GET /schemas/ids/{id} answered from memory.",
            registry=self.registry,
        )


@dataclass
class Request:
    method: str
    path: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    route: str = "unmatched"
    response_type: str = V1
    extra: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name: str) -> bool:
        value = self.param(name)
        return value is not None and value.strip().lower() == "true"

    def int_param(self, name: str, default: int) -> int:
        value = self.param(name)
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    def json(self) -> Any:
        if not self.body:
            raise errors.bad_request("Request body is empty")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"Unexpected content in request body: {exc}") from None


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str | None = None


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(value))


def _error(status: int, code: int, message: str) -> Response:
    return Response(status, orjson.dumps({"error_code": code, "message": message}))


def _negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or ``None`` when nothing acceptable is offered."""
    if not accept:
        return V1
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        quality = 1.0
        for p in pieces[1:]:
            if p.startswith("q="):
                try:
                    quality = float(p[2:])
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media in ("*/*", "application/*"):
            chosen = V1
        elif media in PRODUCIBLE:
            chosen = media
        else:
            continue
        candidate = (-quality, position, chosen)
        if best is None or candidate < best:
            best = candidate
    return best[2] if best else None


def _paging(items: list[Any], request: Request) -> list[Any]:
    offset = max(request.int_param("offset", 0), 0)
    limit = request.int_param("limit", -1)
    items = items[offset:]
    return items[:limit] if limit >= 0 else items


class RegistryApp:
    """ASGI application: lifespan (pool, migrations) plus the REST API."""

    def __init__(
        self,
        registry: Registry,
        *,
        users: dict[str, str] | None = None,
        read_only: frozenset[str] = frozenset(),
        max_body_bytes: int = 8 * 1024 * 1024,
        metrics: RegistryMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.users = users or {}
        self.read_only = read_only
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics or RegistryMetrics()
        self.started = False
        self._id_cache: dict[int, bytes] = {}
        self._count_ok = self.metrics.requests.labels("/schemas/ids/{id}", "GET", "200")
        self._latency_ids = self.metrics.latency.labels("/schemas/ids/{id}", "GET")
        self._count_root = self.metrics.requests.labels("/", "GET", "200")
        self._latency_root = self.metrics.latency.labels("/", "GET")

    # -- ASGI entry -----------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.registry.pool.open(wait=True, timeout=30.0)
                    await self.registry.migrate()
                except Exception as exc:
                    log.exception("registry startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.started = True
                log.info("schema registry ready")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.started = False
                await self.registry.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        raw = raw_path.split(b"?", 1)[0].decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        # Trivial endpoint: constant bytes, no database, no routing (the baseline of the lookup benchmark).
        if method == "GET" and raw == "/" and (not self.users or self._authorized(headers)):
            content_type = _negotiate(headers.get("accept"))
            if content_type is not None:
                await self._send(send, 200, b"{}", content_type)
                self._count_root.inc()
                self._latency_root.observe(time.perf_counter() - started)
                return

        # Hot path: a cached schema by id, no body, nothing else to look at.
        if method == "GET" and raw.startswith("/schemas/ids/") and (not self.users or self._authorized(headers)):
            tail = raw[13:]
            if tail.isdigit() and len(tail) < 11:
                cached = self._id_cache.get(int(tail))
                if cached is not None:
                    content_type = _negotiate(headers.get("accept"))
                    if content_type is not None:
                        await self._send(send, 200, cached, content_type)
                        self._count_ok.inc()
                        self.metrics.cache_hits.inc()
                        self._latency_ids.observe(time.perf_counter() - started)
                        return

        segments = [unquote(s, errors="replace") for s in raw.split("/")[1:]] if raw != "/" else []
        if segments and segments[-1] == "" and len(segments) > 1:
            segments = segments[:-1]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        request = Request(method, raw, segments, query, headers)
        response = await self._handle(request, receive)
        await self._send(send, response.status, response.body, response.content_type or request.response_type)
        self.metrics.requests.labels(request.route, method, str(response.status)).inc()
        self.metrics.latency.labels(request.route, method).observe(time.perf_counter() - started)

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Basic realm="SchemaRegistry"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, headers: dict[str, str]) -> bool:
        return self._user(headers) is not None

    def _user(self, headers: dict[str, str]) -> str | None:
        """The name of the user the request's basic credentials authenticate, else ``None``."""
        value = headers.get("authorization", "")
        if value[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, _, password = decoded.partition(":")
        expected = self.users.get(name)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return name

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _handle(self, request: Request, receive: Receive) -> Response:
        try:
            if request.path not in UNAUTHENTICATED and self.users:
                user = self._user(request.headers)
                if user is None:
                    return _error(401, 40101, "Unauthorized")
                denied = denied_operation(request) if user in self.read_only else None
                if denied is not None:
                    return _error(403, 40301, f"User {user} is denied operation {denied}")
            if request.path not in UNAUTHENTICATED:
                negotiated = _negotiate(request.headers.get("accept"))
                if negotiated is None:
                    return _error(406, 406, "HTTP 406 Not Acceptable")
                request.response_type = negotiated
            if request.method in ("POST", "PUT"):
                content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if content_type and content_type not in ACCEPTED_BODY_TYPES:
                    return _error(415, 415, "HTTP 415 Unsupported Media Type")
                body = await self._read_body(receive)
                if body is None:
                    return _error(413, 413, "Request body too large")
                request.body = body
            return await self._dispatch(request)
        except RegistryError as exc:
            return _error(exc.status, exc.error_code, exc.message)
        except psycopg_pool.PoolTimeout:
            log.warning("no database connection available for %s %s", request.method, request.route)
            return _error(500, 50002, "Operation timed out")
        except psycopg.Error as exc:
            log.error("store error on %s %s: %s", request.method, request.route, exc)
            return _error(500, 50001, "Error in the backend data store")
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.route)
            return _error(500, 50001, "Internal server error")

    # -- routing ----------------------------------------------------------------------------------------------

    async def _dispatch(self, r: Request) -> Response:
        s = r.segments
        n = len(s)
        m = r.method
        if n == 0:
            r.route = "/"
            return self._only(m, "GET") or _json({})
        head = s[0]
        if head == "healthz" and n == 1:
            r.route = "/healthz"
            return self._only(m, "GET") or self._health()
        if head == "readyz" and n == 1:
            r.route = "/readyz"
            return self._only(m, "GET") or await self._ready()
        if head == "metrics" and n == 1:
            r.route = "/metrics"
            return self._only(m, "GET") or Response(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        if head == "schemas":
            return await self._schemas(r, s[1:])
        if head == "subjects":
            return await self._subjects(r, s[1:])
        if head == "config":
            return await self._config(r, s[1:])
        if head == "mode":
            return await self._mode(r, s[1:])
        if head == "compatibility" and n in (4, 5) and s[1] == "subjects" and s[3] == "versions":
            r.route = "/compatibility/subjects/{subject}/versions" + ("/{version}" if n == 5 else "")
            return self._only(m, "POST") or await self._test_compatibility(r, s[2], s[4] if n == 5 else None)
        if head == "contexts" and n == 1:
            r.route = "/contexts"
            return self._only(m, "GET") or _json(["."])
        return _error(404, 404, "HTTP 404 Not Found")

    @staticmethod
    def _only(method: str, allowed: str) -> Response | None:
        if method == allowed:
            return None
        return _error(405, 405, "HTTP 405 Method Not Allowed")

    def _health(self) -> Response:
        if self.started:
            return Response(200, b'{"status":"ok"}', "application/json")
        return Response(503, b'{"status":"starting"}', "application/json")

    async def _ready(self) -> Response:
        try:
            await self.registry.ping()
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", exc)
            return Response(503, b'{"status":"database unreachable"}', "application/json")
        return Response(200, b'{"status":"ready"}', "application/json")

    # -- /schemas ---------------------------------------------------------------------------------------------

    async def _schema_id(self, value: str) -> int:
        try:
            schema_id = int(value)
        except ValueError:
            raise RegistryError(404, 404, "HTTP 404 Not Found") from None
        return schema_id

    async def _schemas(self, r: Request, s: list[str]) -> Response:
        n = len(s)
        if n == 1 and s[0] == "types":
            r.route = "/schemas/types"
            return self._only(r.method, "GET") or _json(list(SUPPORTED_TYPES))
        if n >= 2 and s[0] == "ids" and n <= 3:
            suffix = s[2] if n == 3 else ""
            if suffix not in ("", "schema", "subjects", "versions"):
                return _error(404, 404, "HTTP 404 Not Found")
            r.route = "/schemas/ids/{id}" + (f"/{suffix}" if suffix else "")
            if (denied := self._only(r.method, "GET")) is not None:
                return denied
            schema_id = await self._schema_id(s[1])
            row = await self.registry.schema(schema_id)
            subject = r.param("subject")
            if suffix == "":
                body = orjson.dumps(schema_response(row))
                if subject is None and len(self._id_cache) < 1_000_000:
                    self._id_cache[schema_id] = body
                return Response(200, body)
            if suffix == "schema":
                return Response(200, row.text.encode())
            usages = await self.registry.schema_usages(schema_id, deleted=r.flag("deleted"), subject=subject)
            if suffix == "subjects":
                return _json(_paging(sorted({u.subject for u in usages}), r))
            return _json(_paging([{"subject": u.subject, "version": u.version} for u in usages], r))
        if n in (2, 3) and s[0] == "guids":
            r.route = "/schemas/guids/{guid}" + ("/schema" if n == 3 else "")
            if (denied := self._only(r.method, "GET")) is not None:
                return denied
            if n == 3 and s[2] != "schema":
                return _error(404, 404, "HTTP 404 Not Found")
            row = await self.registry.schema_by_guid(s[1])
            if n == 3:
                return Response(200, row.text.encode())
            return _json(schema_response(row, id=row.id, guid=row.guid))
        return _error(404, 404, "HTTP 404 Not Found")

    # -- /subjects --------------------------------------------------------------------------------------------

    async def _subjects(self, r: Request, s: list[str]) -> Response:
        n = len(s)
        m = r.method
        if n == 0:
            r.route = "/subjects"
            if (denied := self._only(m, "GET")) is not None:
                return denied
            names = await self.registry.subjects(
                deleted=r.flag("deleted"), deleted_only=r.flag("deleted_only"), prefix=r.param("subjectPrefix") or ""
            )
            return _json(_paging(names, r))
        subject = s[0]
        if n == 1:
            r.route = "/subjects/{subject}"
            if m == "POST":
                request = parse_register_body(r.json(), normalize=r.flag("normalize"), allow_ids=False)
                version_row, row = await self.registry.lookup(subject, request.schema, deleted=r.flag("deleted"))
                return _json(schema_response(row, subject=subject, version=version_row.version, id=row.id))
            if m == "DELETE":
                return _json(await self.registry.delete_subject(subject, permanent=r.flag("permanent")))
            return _error(405, 405, "HTTP 405 Method Not Allowed")
        if s[1] != "versions":
            return _error(404, 404, "HTTP 404 Not Found")
        if n == 2:
            r.route = "/subjects/{subject}/versions"
            if m == "GET":
                numbers = await self.registry.versions(
                    subject, deleted=r.flag("deleted"), deleted_only=r.flag("deleted_only")
                )
                return _json(_paging(numbers, r))
            if m == "POST":
                return await self._register(r, subject)
            return _error(405, 405, "HTTP 405 Method Not Allowed")
        version = parse_version(s[2])
        if n == 3:
            r.route = "/subjects/{subject}/versions/{version}"
            if m == "GET":
                version_row, row = await self.registry.version(subject, version, deleted=r.flag("deleted"))
                return _json(schema_response(row, subject=subject, version=version_row.version, id=row.id))
            if m == "DELETE":
                return _json(await self.registry.delete_version(subject, version, permanent=r.flag("permanent")))
            return _error(405, 405, "HTTP 405 Method Not Allowed")
        if n == 4 and s[3] == "schema":
            r.route = "/subjects/{subject}/versions/{version}/schema"
            if (denied := self._only(m, "GET")) is not None:
                return denied
            _, row = await self.registry.version(subject, version, deleted=r.flag("deleted"))
            return Response(200, row.text.encode())
        if n == 4 and s[3] == "referencedby":
            r.route = "/subjects/{subject}/versions/{version}/referencedby"
            if (denied := self._only(m, "GET")) is not None:
                return denied
            return _json(_paging(await self.registry.referenced_by(subject, version), r))
        return _error(404, 404, "HTTP 404 Not Found")

    async def _register(self, r: Request, subject: str) -> Response:
        request = parse_register_body(r.json(), normalize=r.flag("normalize"))
        result = await self.registry.register(subject, request)
        self.metrics.registered.labels("true" if result.created else "false").inc()
        if r.headers.get("confluent-accept-unknown-properties", "").lower() == "true":
            return _json({"id": result.schema_id, "version": result.version, "guid": result.guid})
        return _json({"id": result.schema_id})

    async def _test_compatibility(self, r: Request, subject: str, raw_version: str | None) -> Response:
        version = parse_version(raw_version) if raw_version is not None else None
        request = parse_register_body(r.json(), normalize=r.flag("normalize"), allow_ids=False)
        ok, messages = await self.registry.test_compatibility(
            subject, request.schema, version, all_versions=raw_version is None
        )
        body: dict[str, Any] = {"is_compatible": ok}
        if r.flag("verbose"):
            body["messages"] = messages
        return _json(body)

    # -- /config and /mode ------------------------------------------------------------------------------------

    @staticmethod
    def _scope(r: Request, s: list[str], resource: str) -> tuple[str | None, Response | None]:
        """The optional subject of ``/{resource}[/{subject}]`` (labelling the route), or the 404 to return."""
        if len(s) > 1:
            return None, _error(404, 404, "HTTP 404 Not Found")
        subject = s[0] if s else None
        r.route = f"/{resource}/{{subject}}" if subject is not None else f"/{resource}"
        if subject is not None and not subject:
            return None, _error(404, 404, "HTTP 404 Not Found")
        return subject, None

    async def _config(self, r: Request, s: list[str]) -> Response:
        subject, not_found = self._scope(r, s, "config")
        if not_found is not None:
            return not_found
        if r.method == "GET":
            return await _read_setting(
                r, subject, self.registry.compatibility, errors.compatibility_not_configured, "compatibilityLevel"
            )
        if r.method == "PUT":
            body = _object_body(r)
            raw = body.get("compatibility", body.get("compatibilityLevel"))
            if not isinstance(raw, str):
                raise errors.invalid_compatibility_level()
            try:
                level = CompatibilityLevel.parse(raw)
            except ValueError:
                raise errors.invalid_compatibility_level() from None
            if subject is not None:
                _check_writable_subject(subject)
            await self.registry.set_compatibility(subject, level)
            return _json({"compatibility": level.value})
        if r.method == "DELETE":
            if subject is not None:
                _check_readable_subject(subject)
            previous = await self.registry.delete_compatibility(subject)
            return _json({"compatibilityLevel": previous.value})
        return _error(405, 405, "HTTP 405 Method Not Allowed")

    async def _mode(self, r: Request, s: list[str]) -> Response:
        subject, not_found = self._scope(r, s, "mode")
        if not_found is not None:
            return not_found
        if r.method == "GET":
            return await _read_setting(r, subject, self.registry.mode, errors.mode_not_configured, "mode")
        if r.method == "PUT":
            raw = _object_body(r).get("mode")
            try:
                mode = Mode(raw.strip().upper()) if isinstance(raw, str) else None
            except ValueError:
                mode = None
            if mode is None:
                raise errors.invalid_mode()
            if subject is not None:
                _check_writable_subject(subject)
            await self.registry.set_mode(subject, mode, force=r.flag("force"))
            return _json({"mode": mode.value})
        if r.method == "DELETE" and subject is not None:
            _check_readable_subject(subject)
            return _json({"mode": (await self.registry.delete_mode(subject)).value})
        return _error(405, 405, "HTTP 405 Method Not Allowed")


async def _read_setting(
    r: Request,
    subject: str | None,
    read: Callable[..., Awaitable[Enum | None]],
    not_configured: Callable[[str], RegistryError],
    key: str,
) -> Response:
    """GET of a subject's (or the global) compatibility level or mode: ``{key: value}``."""
    if subject is not None:
        _check_readable_subject(subject)
    value = await read(subject, default_to_global=r.flag("defaultToGlobal"))
    if value is None:
        raise not_configured(subject or "")
    return _json({key: value.value})


def denied_operation(r: Request) -> str | None:
    """What a read-only user may not do: the operation and resource a request would change (Confluent's RBAC
    wording), or ``None`` for a read. Reads include the two POSTs that change nothing: a lookup
    (``POST /subjects/{s}``) and a compatibility test (``POST /compatibility/...``)."""
    s = r.segments
    head = s[0] if s else ""
    target = f"Subject: {s[1]}" if head in ("subjects", "config", "mode") and len(s) > 1 else "the global settings"
    if r.method == "DELETE":
        return f"Delete on {target}"
    if r.method == "PUT" and head == "config":
        return f"AlterConfigs (compatibility) on {target}"
    if r.method == "PUT":
        return f"AlterConfigs ({head}) on {target}"
    if r.method == "POST" and head == "subjects" and len(s) == 3 and s[2] == "versions":
        return f"Write on {target}"
    if r.method in ("POST", "PATCH") and head not in ("subjects", "compatibility"):
        return f"Write on {target}"
    return None


def _object_body(r: Request) -> dict[str, Any]:
    body = r.json()
    if not isinstance(body, dict):
        raise errors.unprocessable("Request body must be a JSON object")
    return body


def _check_readable_subject(subject: str) -> None:
    if not valid_subject(subject):
        raise errors.subject_not_found(subject)


def _check_writable_subject(subject: str) -> None:
    if not valid_subject(subject):
        raise errors.invalid_subject(subject)
