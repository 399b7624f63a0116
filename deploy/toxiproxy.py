"""A small client of Toxiproxy's HTTP API, and its server run as a child process (``ToxiproxyServer``).

A proxy listens on a loopback port and forwards to one upstream ``host:port``; disabling it resets every open
connection and refuses new ones (an outage the clients behind it see while the server keeps running for everyone
else); toxics degrade what it forwards (``latency``, ``bandwidth``, ``reset_peer``, ``timeout``, ...). API:
https://github.com/Shopify/toxiproxy#http-api (v2.5).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from deploy.processes import LOOPBACK, free_port


@dataclass
class Proxy:
    """One proxy of a server: ``listen`` is where clients connect instead of ``upstream``."""

    client: Toxiproxy
    name: str
    listen: str
    upstream: str

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def enable(self) -> None:
        self.client.request("POST", f"/proxies/{self.name}", json={"enabled": True})

    def disable(self) -> None:
        """Reset every open connection and refuse new ones until ``enable``."""
        self.client.request("POST", f"/proxies/{self.name}", json={"enabled": False})

    def add_toxic(
        self, kind: str, stream: str, attributes: dict[str, int], *, toxicity: float = 1.0, name: str = ""
    ) -> str:
        """Add a toxic (``kind`` e.g. ``latency`` with ``latency``/``jitter`` ms, ``bandwidth`` with ``rate`` KB/s,
        ``reset_peer`` with ``timeout`` ms); returns its name."""
        toxic = name or f"{kind}_{stream}"
        body = {"name": toxic, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        self.client.request("POST", f"/proxies/{self.name}/toxics", json=body)
        return toxic

    def remove_toxic(self, name: str) -> None:
        self.client.request("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def toxics(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.client.request("GET", f"/proxies/{self.name}/toxics").json()
        return result


class ToxiproxyError(RuntimeError):
    """The API refused a request (its status and message)."""


class Toxiproxy:
    """The HTTP API of one toxiproxy server (``http://host:port``)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=timeout_s)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ToxiproxyError(f"toxiproxy {method} {path}: {response.status_code} {response.text.strip()}")
        return response

    def version(self) -> str:
        return self.request("GET", "/version").text.strip()

    def create(self, name: str, upstream: str, listen: str | None = None) -> Proxy:
        """A proxy forwarding ``listen`` (default: a free loopback port) to ``upstream``."""
        listen = listen or f"{LOOPBACK}:{free_port()}"
        self.request("POST", "/proxies", json={"name": name, "listen": listen, "upstream": upstream, "enabled": True})
        return Proxy(self, name, listen, upstream)

    def proxies(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self.request("GET", "/proxies").json()
        return result

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.request("POST", "/reset")

    def close(self) -> None:
        self.http.close()


class ToxiproxyServer:
    """``toxiproxy-server`` on a loopback port of its own, as a child process (a context manager)."""

    def __init__(self, binary: Path, log: Path, port: int | None = None) -> None:
        if not binary.exists():
            raise FileNotFoundError(f"{binary} is missing: run the setup step (make setup / freightline setup)")
        self.binary = binary
        self.log = log
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.client = Toxiproxy(f"http://{LOOPBACK}:{self.port}")

    def start(self, timeout_s: float = 30.0) -> Toxiproxy:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as handle:
            command = [str(self.binary), "-host", LOOPBACK, "-port", str(self.port)]
            self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"toxiproxy-server exited {self.process.returncode}; see {self.log}")
            try:
                self.client.version()
                return self.client
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Toxiproxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
