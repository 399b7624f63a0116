"""JSON logs carrying the current trace and span ids, with credentials masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter


class _TraceContextFilter(logging.Filter):
    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.service = self.service_name
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else None
        record.span_id = format(context.span_id, "016x") if context.is_valid else None
        return True


MASK = "***"
# The password of a URL's user info (``scheme://user:password@host``), in any text.  # pragma: allowlist secret
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)")


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL password and every one of ``secrets`` replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda match: match.group("head") + MASK, text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


class MaskingJsonFormatter(JsonFormatter):
    """The JSON line of a record, with credentials masked wherever they appear (message, arguments, exception)."""

    def __init__(self, *args: object, secrets: Iterable[str] = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        values = {s for s in secrets if s}
        self.secrets = frozenset(values | {json.dumps(s)[1:-1] for s in values})  # as a JSON string holds them

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record), self.secrets)


def configure_logging(service_name: str, level: str = "INFO", *, secrets: Iterable[str] = ()) -> None:
    """Route every logger to one JSON line per record on stderr (idempotent). ``secrets`` (the values of the
    process's credentials: ``RedactedSettings.secret_values``) never appear in a line, nor does a URL's password."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        MaskingJsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            secrets=secrets,
        )
    )
    handler.addFilter(_TraceContextFilter(service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
