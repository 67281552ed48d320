"""Network faults for tests: a TCP forwarder to a real service that a test can cut or hang.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.cut()      # every connection closed, new ones closed at once
        proxy.restore()  # forwarding again

`hang()` is the nastier fault: connections stay open (new ones are accepted) but nothing is
forwarded, as behind a dead link; `restore()` then closes them, since bytes were lost. The
proxy runs an asyncio loop on a thread of its own, so the test's threads are free to block.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Literal

Mode = Literal["forward", "cut", "hang"]


class TcpProxy:
    """Forwards a free loopback port to `host:port` until told otherwise."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self.mode: Mode = "forward"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def cut(self) -> None:
        """Close every connection, and each new one as soon as it is accepted."""
        self._call(self._switch("cut", close=True))

    def hang(self) -> None:
        """Keep connections open but forward nothing, either way, until `restore`."""
        self._call(self._switch("hang", close=False))

    def restore(self) -> None:
        """Forward again; connections that lived through a hang are closed (bytes were lost)."""
        self._call(self._switch("forward", close=self.mode == "hang"))

    def close(self) -> None:
        """Stop listening, close every connection and end the thread."""
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _switch(self, mode: Mode, *, close: bool) -> None:
        self.mode = mode
        if close:
            for transport in list(self._transports):
                transport.abort()
            self._transports.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._switch("cut", close=True)
        # Let every connection's pumps see their end, so nothing is left open when the loop closes.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        self._transports.add(writer.transport)
        if self.mode == "hang":
            await self._pump(reader, None)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._transports.add(up_writer.transport)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None
    ) -> None:
        """Copy until either side closes; in a hang, bytes are read and dropped."""
        try:
            while data := await reader.read(65536):
                if writer is None or self.mode != "forward":
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if writer is not None:
                self._transports.discard(writer.transport)
                with contextlib.suppress(Exception):
                    writer.transport.abort()
