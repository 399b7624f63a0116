"""A bad TLS or registry setting ends a service with one clear line naming it (``test_bad_configuration``'s rule)."""

from __future__ import annotations

import pytest

from tests.integration.config.test_bad_configuration import _assert_one_line_naming, _run

pytestmark = pytest.mark.integration

# (service module, variable, bad value)
MALFORMED_TLS = [
    ("schema_registry", "SCHEMA_REGISTRY_SERVER_SSL_CERTFILE", "/nonexistent/schema_registry.crt"),
    ("enricher", "SCHEMA_REGISTRY_SSL_CA_LOCATION", "/nonexistent/ca.crt"),
]


@pytest.mark.parametrize(("service", "variable", "value"), MALFORMED_TLS, ids=[v for _, v, _ in MALFORMED_TLS])
def test_a_malformed_tls_setting_is_named_in_one_line(
    stack_env: dict[str, str], service: str, variable: str, value: str
) -> None:
    _assert_one_line_naming(_run(service, stack_env, **{variable: value}), variable)
