"""A TCP proxy on 127.0.0.1 in front of a real server (PostgreSQL, Redis), which a test or a
benchmark cuts and restores: the server "restarting", as its clients see it, without touching
the machine's own server."""

from __future__ import annotations

import asyncio

WAIT_S = 60.0


class TcpProxy:
    """127.0.0.1:port in front of a server. cut(): every connection through it is dropped and
    new ones are closed as soon as they open (a server restarting); restore(): through again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.refused = 0  # connections closed at once while cut
        self._cut = False
        self._links: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        self._drop()
        await self._server.wait_closed()

    def cut(self) -> None:
        self._cut = True
        self._drop()

    def restore(self) -> None:
        self._cut = False

    async def until_refused(self, count: int) -> None:
        """Until `count` connections were refused since the start (someone is retrying)."""
        async with asyncio.timeout(WAIT_S), self._changed:
            await self._changed.wait_for(lambda: self.refused >= count)

    def _drop(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            async with self._changed:
                self.refused += 1
                self._changed.notify_all()
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1",
                                                                      self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, upstream}
        await asyncio.gather(_pump(reader, upstream), _pump(upstream_reader, writer))
        self._links -= {writer, upstream}


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
