"""The environment variables a service reads: the settings classes its entrypoint (``services/<name>/__main__.py``)
and the modules of ours it imports instantiate, and each class's fields under its prefix.

Found by reading the code (its syntax tree), so a setting added to a service is a variable the consistency tests
demand of every deployment without anyone listing it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

LOCAL_MARKERS = ("127.0.0.1", "localhost", ".freightline")
"""Defaults that only hold on the local stack (a loopback endpoint, the checkout's state directory): a deployment
must set such a variable."""


@dataclass(frozen=True)
class Variable:
    name: str
    settings: str
    """The settings class (and field) it belongs to."""
    default: object
    required: bool
    """No default: a deployment must set it."""
    secret: bool

    @property
    def local_default(self) -> bool:
        return isinstance(self.default, str) and any(marker in self.default for marker in LOCAL_MARKERS)

    @property
    def must_set(self) -> bool:
        """A deployment must set it: no default, or a default that only holds on the local stack."""
        return self.required or self.local_default


def _module_path(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin) if spec is not None and spec.origin else None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


OUR_PACKAGES = frozenset({"services", "batch_spark", "stream_processors"})


def settings_classes(service: str) -> tuple[type[BaseSettings], ...]:
    """Every settings class instantiated (``Name(...)``) in ``services.<service>.__main__`` and, transitively, in the
    modules of ours it imports."""
    return module_settings_classes(f"services.{service}.__main__")


@functools.cache
def module_settings_classes(entrypoint: str) -> tuple[type[BaseSettings], ...]:
    """Every settings class instantiated in the module ``entrypoint`` and, transitively, in the modules of ours
    (``services``, ``batch_spark``, ``stream_processors``) it imports."""
    seen: set[str] = set()
    pending = [entrypoint]
    classes: dict[str, type[BaseSettings]] = {}
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_path(name)
        if path is None or path.suffix != ".py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        pending.extend(m for m in _candidate_modules(tree, package) if m not in seen)
        namespace = {**vars(importlib.import_module(name)), **_imported_names(tree, package)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                value = namespace.get(node.func.id)
                if isinstance(value, type) and issubclass(value, BaseSettings):
                    classes[value.__qualname__] = value
    return tuple(sorted(classes.values(), key=lambda cls: cls.__qualname__))


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, node.module] if node.module else parts)


def _imported_names(tree: ast.Module, package: str) -> dict[str, object]:
    """Names the module imports from ours anywhere, function-level imports included."""
    names: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _absolute(node, package).split(".")[0] in OUR_PACKAGES:
            module = importlib.import_module(_absolute(node, package))
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def _candidate_modules(tree: ast.Module, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base.split(".")[0] not in OUR_PACKAGES:
                continue
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}"))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] in OUR_PACKAGES)
    return found


def variables(cls: type[BaseSettings]) -> list[Variable]:
    """The environment variables of a settings class (prefix + field name, upper case)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    found = []
    for name, info in cls.model_fields.items():
        annotation = str(info.annotation)
        found.append(
            Variable(
                name=f"{prefix}{name}".upper(),
                settings=f"{cls.__qualname__}.{name}",
                default=None if info.is_required() else info.get_default(call_default_factory=True),
                required=info.is_required(),
                secret=SecretStr.__name__ in annotation,
            )
        )
    return found


def service_variables(service: str) -> dict[str, Variable]:
    """Every environment variable ``services.<service>`` reads, by name."""
    return module_variables(f"services.{service}.__main__")


def module_variables(entrypoint: str) -> dict[str, Variable]:
    """Every environment variable the program ``python -m <entrypoint>`` reads, by name."""
    return {v.name: v for cls in module_settings_classes(entrypoint) for v in variables(cls)}
