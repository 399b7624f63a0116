"""What several unit test packages build the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.common.settings import KafkaSettings

SecureKafka = Callable[..., KafkaSettings]


@pytest.fixture
def secure_kafka(tmp_path: Path) -> SecureKafka:
    """Factory of the settings of a secure cluster: SASL_SSL with a SCRAM login (``mechanism``, ``username``,
    ``password``) and a CA file (``str(settings.ssl_ca_location)``) under the test's own folder."""

    def make(mechanism: str = "SCRAM-SHA-512", username: str = "stream", password: str = "pw") -> KafkaSettings:
        ca = tmp_path / "ca.crt"
        ca.write_text("pem")
        return KafkaSettings(
            bootstrap_servers="k:1",
            security_protocol="SASL_SSL",
            sasl_mechanism=mechanism,
            sasl_username=username,
            sasl_password=SecretStr(password),
            ssl_ca_location=str(ca),
        )

    return make
