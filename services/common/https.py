"""The ``requests`` session of the clients that take a CA setting (WebHDFS, the GCS emulator)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from requests.sessions import _Cert, _Settings, _TextMapping, _Verify


class TrustingSession(requests.Session):
    """A session whose https servers are checked against the CAs of ``ca_location`` (a PEM file) alone: a plain
    session takes ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` over its own ``verify`` whenever they are set, which
    would quietly replace a configured CA with the system's."""

    def __init__(self, ca_location: str) -> None:
        super().__init__()
        self.verify = ca_location

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: _TextMapping | None,
        stream: bool | None,
        verify: _Verify | None,
        cert: _Cert | None,
    ) -> _Settings:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:  # not given for this request: the session's CA, not the environment's
            settings["verify"] = self.verify
        return settings


def https_session(ca_location: str | None) -> requests.Session:
    """A session checking https servers against ``ca_location`` when set (a ``TrustingSession``), else the system's
    CAs (what ``requests`` does by default, ``REQUESTS_CA_BUNDLE`` included)."""
    return TrustingSession(ca_location) if ca_location else requests.Session()
