"""What every service's ``__main__`` runs its ``main`` through: bad configuration ends the process with one
clear line naming the setting (its environment variable) and exit status 2, an endpoint unreachable at start-up
with one line naming its setting and exit status 4, instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from services.common.endpoints import UnreachableEndpoint

CONFIGURATION_ERROR = 2
UNREACHABLE_ENDPOINT = 4


def _settings_classes(base: type[BaseSettings] = BaseSettings) -> list[type[BaseSettings]]:
    found = []
    for cls in base.__subclasses__():
        found.append(cls)
        found.extend(_settings_classes(cls))
    return found


def _variable(model: str, location: tuple[int | str, ...]) -> str:
    """The environment variable of a settings field (``KAFKA_BOOTSTRAP_SERVERS``), else the field's name."""
    field = ".".join(str(part) for part in location)
    for cls in _settings_classes():
        if cls.__name__ == model:
            return f"{cls.model_config.get('env_prefix', '')}{field}".upper()
    return field


def describe(error: ValidationError) -> str:
    """One line naming each invalid setting and what is wrong with it (never the value: it may be a secret)."""
    problems = [f"{_variable(error.title, tuple(e['loc']))}: {e['msg']}" for e in error.errors()]
    return "configuration error: " + "; ".join(problems)


def run_entrypoint(main: Callable[[], int | None]) -> int:
    """``main()``'s exit status; a configuration error prints one line on stderr and returns 2 (so does a contract the
    registry refuses, as no retry helps), an endpoint that did not answer at start-up one line naming its setting and
    returns 4."""
    try:
        return main() or 0
    except ValidationError as error:
        print(describe(error), file=sys.stderr)
        return CONFIGURATION_ERROR
    except UnreachableEndpoint as error:
        print(error, file=sys.stderr)
        return UNREACHABLE_ENDPOINT
    except Exception as error:
        if not _refused_contract(error):
            raise
        print(
            f"schema registry refused a contract: {error} (with SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS=false every "
            "subject the service writes must be registered first; SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO names its user)",
            file=sys.stderr,
        )
        return CONFIGURATION_ERROR


def _refused_contract(error: Exception) -> bool:
    """The registry refused a schema a service writes (``serde.UnknownSchema``): not registered while the service may
    only look schemas up, or not registrable by its user. Checked without importing the serde (a service that never
    loaded it cannot raise it)."""
    serde = sys.modules.get("services.common.serde")
    return serde is not None and isinstance(error, serde.UnknownSchema)
