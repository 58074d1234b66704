"""A WebSocket client on anyio (asyncio and trio alike): wsproto speaks the protocol, anyio
moves the bytes. Text frames only, which is all the Worker speaks."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import anyio
import anyio.abc

try:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        CloseConnection,
        Message,
        Ping,
        RejectConnection,
        RejectData,
        Request,
        TextMessage,
    )
    from wsproto.utilities import LocalProtocolError
except ImportError:  # the cloudflare extra is not installed: said when a connection is made
    WSConnection = None  # type: ignore[assignment,misc]

INSTALL_HINT = "CloudflareDriver needs the cloudflare extra: pip install 'codemode[cloudflare]' (wsproto)"

_READ = 1 << 16


class RefusedError(ConnectionError):
    """The server answered the opening handshake with an HTTP status, not a WebSocket."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
        self.status = status


class WebSocket:
    """One client connection; :meth:`connect` opens it."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._writing = anyio.Lock()  # a pong may go out while a message does (trio refuses both)
        self._texts: list[str] = []
        self._partial: list[str] = []
        self.closed = False

    @classmethod
    async def connect(
        cls, url: str, headers: dict[str, str], ssl_context: ssl.SSLContext | None = None
    ) -> WebSocket:
        """Open ``url`` (``http(s)://`` or ``ws(s)://``) with extra handshake ``headers``
        (TLS for https/wss, verified with ``ssl_context``, else the system's CAs);
        ``RuntimeError`` without wsproto."""
        if WSConnection is None:
            raise RuntimeError(INSTALL_HINT)
        parts = urlsplit(url)
        secure = parts.scheme in ("https", "wss")
        host = parts.hostname or "localhost"
        port = parts.port or (443 if secure else 80)
        if secure:
            stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                host,
                port,
                tls=True,
                ssl_context=ssl_context or ssl.create_default_context(),
                tls_standard_compatible=False,
            )
        else:
            stream = await anyio.connect_tcp(host, port)
        try:
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
            if raw is not None:
                import socket

                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socket_ = cls(stream)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            authority = parts.netloc.rsplit("@", 1)[-1]
            # wsproto annotates the headers as bytes; h11, which writes them, takes str too
            extra_headers = list(headers.items())
            request = Request(host=authority, target=target, extra_headers=extra_headers)  # type: ignore[arg-type]
            await socket_._write(socket_._ws.send(request))
            await socket_._handshake()
            return socket_
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError) as e:
            await stream.aclose()
            raise ConnectionError(f"the connection closed during the handshake ({type(e).__name__})") from e
        except BaseException:
            await stream.aclose()
            raise

    async def _write(self, data: bytes) -> None:
        if data:
            async with self._writing:
                await self._stream.send(data)

    async def _handshake(self) -> None:
        status = 0
        body = bytearray()
        while True:
            data = await self._stream.receive(_READ)
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise RefusedError(status, b"")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise RefusedError(status, bytes(body))

    async def send(self, text: str) -> None:
        """Send one text message; ``anyio.ClosedResourceError`` once the connection is closing."""
        try:
            data = self._ws.send(Message(data=text))
        except LocalProtocolError as e:
            raise anyio.ClosedResourceError from e
        await self._write(data)

    async def receive(self) -> list[str]:
        """The next text messages (at least one); ``[]`` once the connection has closed."""
        while not self._texts:
            if self.closed:
                return []
            try:
                data = await self._stream.receive(_READ)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                self.closed = True
                return []
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, TextMessage):
                    self._partial.append(event.data)
                    if event.message_finished:
                        self._texts.append("".join(self._partial))
                        self._partial.clear()
                elif isinstance(event, Ping):
                    await self._write(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.closed = True
                    try:
                        await self._write(self._ws.send(event.response()))
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        pass
        texts, self._texts = self._texts, []
        return texts

    async def aclose(self) -> None:
        self.closed = True
        await self._stream.aclose()
