"""Start-up reachability: the first endpoint that fails is named by its setting, with its address and no secret."""

from __future__ import annotations

import pytest

from services.common.endpoints import Endpoint, UnreachableEndpoint, redact, require_reachable


def _answers(_: float) -> None:
    return None


def _refuses(_: float) -> None:
    raise ConnectionRefusedError("[Errno 111] Connection\n refused")


def test_every_endpoint_answering_passes() -> None:
    require_reachable([Endpoint("A_URL", "http://a", _answers), Endpoint("B_URL", "http://b", _answers)], 1.0)


def test_the_first_endpoint_that_fails_is_named_with_its_address_in_one_line() -> None:
    endpoints = [
        Endpoint("A_URL", "http://a", _answers),
        Endpoint("B_URL", "http://b", _refuses),
        Endpoint("C_URL", "http://c", _refuses),
    ]
    with pytest.raises(UnreachableEndpoint) as caught:
        require_reachable(endpoints, 1.0)
    assert caught.value.variable == "B_URL"
    assert str(caught.value) == "unreachable endpoint: B_URL (http://b): [Errno 111] Connection refused"


def test_the_probe_gets_the_timeout() -> None:
    seen: list[float] = []
    require_reachable([Endpoint("A_URL", "http://a", seen.append)], 2.5)
    assert seen == [2.5]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("mongodb://user:pw@mongo/?tls=true", "mongodb://user:***@mongo/?tls=true"),
        ("http://127.0.0.1:18081", "http://127.0.0.1:18081"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
    ],
)
def test_addresses_never_show_a_password(url: str, shown: str) -> None:
    assert redact(url) == shown
