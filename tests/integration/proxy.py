"""A TCP proxy on loopback that can cut a client off from a real server: an outage without stopping the server.

``TcpProxy`` listens on 127.0.0.1 (a free port) and forwards every connection to one upstream address, byte for
byte, in both directions. ``cut()`` resets every open connection and, until ``restore()``, resets each new one as
soon as it is accepted (the client sees a connection reset, as from a server that went away), so the clients
behind it see the outage while other clients of the server do not. One event-loop thread serves every connection;
connections are bounded (``max_connections``: beyond it a new one is reset) and so is each one's buffering (reads
of at most ``CHUNK`` bytes, each written and drained before the next read).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

CHUNK = 64 * 1024
T = TypeVar("T")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (``SO_LINGER`` 0) instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``upstream`` until ``cut()``; use as a context manager."""

    def __init__(self, upstream_host: str, upstream_port: int, *, max_connections: int = 256) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.max_connections = max_connections
        self.port = 0
        self.accepted = 0
        self.refused = 0  # connections reset because the proxy was cut (or full)
        self._connections = 0  # being forwarded now
        self._down = False
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def cut(self) -> None:
        """From now on every connection is reset: the open ones at once, new ones when accepted."""
        self._call(self._cut())

    def restore(self) -> None:
        """Forward again (new connections reach the server)."""
        self._call(self._restore())

    def close(self) -> None:
        if self._server is not None:
            self._call(self._close())
            self._server = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- the event-loop side --------------------------------------------------------------------------------
    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    async def _cut(self) -> None:
        self._down = True
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()

    async def _restore(self) -> None:
        self._down = False

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()
        await self._server.wait_closed()
        serving = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if serving:  # the connections just reset: let their tasks end before the loop stops
            await asyncio.wait(serving, timeout=10)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._down or self._connections >= self.max_connections:
            self.refused += 1
            _reset(client_writer)
            return
        self.accepted += 1
        self._connections += 1
        try:
            await self._forward(client_reader, client_writer)
        finally:
            self._connections -= 1

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client_writer)
            return
        if self._down:  # cut while connecting
            self.refused += 1
            _reset(client_writer)
            _reset(upstream_writer)
            return
        self._open.update((client_writer, upstream_writer))
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        finally:
            for writer in (client_writer, upstream_writer):
                self._open.discard(writer)
                if self._down:
                    _reset(writer)
                elif not writer.transport.is_closing():
                    writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy until end of stream (then half-close) or an error; one bounded chunk in flight at a time."""
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    if writer.can_write_eof() and not writer.transport.is_closing():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (OSError, RuntimeError):
            # one side went away (or was reset by ``cut``): reset the other so the client sees it too
            _reset(writer)
