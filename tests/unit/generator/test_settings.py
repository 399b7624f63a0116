"""Generator settings: topic naming and the engine configuration they build."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.generator.anomalies import AnomalyKind
from services.generator.settings import GeneratorSettings


def test_topics_take_the_prefix_unless_mapped() -> None:
    settings = GeneratorSettings(topic_prefix="t1.", topics={"product_views": "upstream.views"})
    assert settings.topic("web.clickstream.v1") == "t1.web.clickstream.v1"
    assert settings.topic("product_views") == "upstream.views"


def test_unknown_topic_mapping_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown topics"):
        GeneratorSettings(topics={"nope": "x"})


def test_unknown_anomaly_kind_is_rejected() -> None:
    with pytest.raises(ValidationError):
        GeneratorSettings(anomaly_kinds="traffic_spike,meteor")


def test_engine_config_keeps_steps_longer_than_lateness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERATOR_MAX_LATENESS_S", "90")
    monkeypatch.setenv("GENERATOR_STEP_S", "10")
    monkeypatch.setenv("GENERATOR_ANOMALY_KINDS", "error_burst")
    config = GeneratorSettings().engine_config(0)
    assert config.max_lateness_ms == 90_000
    assert config.step_ms > config.max_lateness_ms
    assert config.anomaly_kinds == (AnomalyKind.ERROR_BURST,)


def test_the_settings_defaults_are_the_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    import os

    from services.generator.config import GeneratorConfig

    for name in [n for n in os.environ if n.startswith("GENERATOR_")]:
        monkeypatch.delenv(name)
    built = GeneratorSettings().engine_config()
    assert built == dataclasses.replace(GeneratorConfig(), start_time_ms=built.start_time_ms)
