"""A proxy on loopback in front of an S3 server that disturbs a share of its requests.

`disturbing_proxy(upstream_url, seed)` runs it in a background thread for the length of a
block; clients pointed at its `endpoint_url` reach the upstream server, except that a share of
their requests (drawn from the seed) meets one of these faults instead:

- "slowdown": HTTP 503 with S3's `SlowDown` error body (the request is not forwarded);
- "error": HTTP 500 with S3's `InternalError` body (not forwarded);
- "reset": the connection reset (TCP RST) without an answer (not forwarded);
- "slow": forwarded and answered, but only after `slow_seconds`.

`down()` makes a lasting outage (every connection reset as it arrives) until `calm()`.
HTTP/1.1 keep-alive, chunked bodies and `Expect: 100-continue` pass through: the proxy reads
each request whole (so a disturbed request never reaches the server, half or whole) and streams
each answer back as it comes. Standard library only: bench.soak uses it outside pytest.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

KINDS = ("slowdown", "error", "reset", "slow")
_LOOPBACK = "127.0.0.1"
_CHUNK = 64 * 1024
_HEAD_LIMIT = 1024 * 1024  # the longest message head (or chunk-size line) read
_ERRORS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "error": (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
}


class _Closed(Exception):
    """The client closed its connection between requests (or sent nothing readable)."""


class Proxy:
    """The running proxy: where clients connect, what it does to their requests, what it did."""

    def __init__(self, upstream_url: str, seed: int, slow_seconds: float = 2.0) -> None:
        """A proxy for `upstream_url` (http://host:port) whose faults are drawn from `seed`."""
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream {upstream_url!r}: give http://host:port")
        self.upstream = (parts.hostname, parts.port)
        self.slow_seconds = slow_seconds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._random = random.Random(seed)
        self._share = 0.0
        self._kinds: tuple[str, ...] = ()
        self._down = False
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._serving: set[asyncio.Task[None]] = set()  # held: the loop keeps tasks weakly
        self._thread = threading.Thread(target=self._loop.run_forever, name="s3proxy", daemon=True)
        self.endpoint_url = ""

    # -- control (any thread) --------------------------------------------------------------

    def disturb(self, share: float, kinds: Sequence[str] = KINDS) -> None:
        """From now on, disturb this share (0..1) of requests with faults of these kinds."""
        unknown = set(kinds) - set(KINDS)
        if unknown or not kinds or not 0 <= share <= 1:
            raise ValueError(f"disturb({share}, {kinds}): a share in 0..1 and kinds of {KINDS}")
        with self._lock:
            self._share, self._kinds, self._down = share, tuple(kinds), False

    def calm(self) -> None:
        """From now on, forward every request untouched (also ends an outage)."""
        with self._lock:
            self._share, self._kinds, self._down = 0.0, (), False

    def down(self) -> None:
        """From now on, reset every connection as it arrives: the server looks unreachable."""
        with self._lock:
            self._down = True

    @property
    def host_port(self) -> str:
        """host:port of the proxy, as DuckDB's S3 secret takes an endpoint."""
        return self.endpoint_url.removeprefix("http://")

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on a free loopback port, serving from a background thread."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)

    def stop(self) -> None:
        """Stop listening, drop open connections and end the thread."""
        if self._thread.is_alive():
            future: Future[None] = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
            future.result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        """Open the listening socket."""
        self._server = await asyncio.start_server(self._serve, _LOOPBACK, 0, limit=_HEAD_LIMIT)
        port = self._server.sockets[0].getsockname()[1]
        self.endpoint_url = f"http://{_LOOPBACK}:{port}"

    async def _close(self) -> None:
        """Close the listening socket and cancel the connections being served."""
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        for pending in asyncio.all_tasks():
            if pending is not current:
                pending.cancel()

    # -- serving ------------------------------------------------------------------------

    def _draw(self) -> str | None:
        """The fault for the next request (None: forward it untouched); counts it."""
        with self._lock:
            self.requests += 1
            if self._down:
                kind: str | None = "down"
            elif self._share and self._random.random() < self._share:
                kind = self._random.choice(self._kinds)
            else:
                kind = None
            if kind is not None:
                self.injected[kind] += 1
            return kind

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection: its requests one after another (keep-alive)."""
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        if self._down_now():
            with self._lock:
                self.injected["down"] += 1
            _reset(writer)
            return
        try:
            while True:
                try:
                    head, body = await _read_request(reader, writer)
                except _Closed:
                    return
                kind = self._draw()
                if kind in ("reset", "down"):
                    _reset(writer)
                    return
                if kind in _ERRORS:
                    writer.write(_error_answer(kind))
                    await writer.drain()
                    continue
                if kind == "slow":
                    await asyncio.sleep(self.slow_seconds)
                if not await self._forward(head + body, _method(head), writer):
                    writer.close()
                    return
        except asyncio.CancelledError:  # the proxy stops: the connection ends with it
            _reset(writer)
        except Exception:  # the client or the server broke off, or sent what HTTP is not
            _reset(writer)
        finally:
            if not writer.is_closing():
                writer.close()

    async def _forward(self, request: bytes, method: str, writer: asyncio.StreamWriter) -> bool:
        """Send a request to the server on a connection of its own (never a stale kept one)
        and stream the answer back; whether the client's connection may be kept."""
        upstream_reader, upstream_writer = await asyncio.open_connection(
            *self.upstream, limit=_HEAD_LIMIT
        )
        try:
            upstream_writer.write(request)
            await upstream_writer.drain()
            return await _relay_answer(upstream_reader, writer, method)
        finally:
            upstream_writer.close()

    def _down_now(self) -> bool:
        """Whether a lasting outage is on."""
        with self._lock:
            return self._down


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a TCP reset (SO_LINGER 0), not an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _error_answer(kind: str) -> bytes:
    """A whole S3 error answer (status line, headers, XML body) for a fault kind."""
    status, reason, code, message = _ERRORS[kind]
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amz-request-id: {request_id}\r\n"
        "\r\n"
    ).encode()
    return head + body


def _headers(head: bytes) -> dict[str, str]:
    """A message head's header fields, names lower-cased (a repeated name: the last)."""
    fields = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def _method(head: bytes) -> str:
    """The request's method."""
    return head.split(b" ", 1)[0].decode("latin-1").upper()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """A message's head up to and including its blank line."""
    return await reader.readuntil(b"\r\n\r\n")


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[bytes, bytes]:
    """The next request, whole: its head (without `Expect`, which the proxy answers itself)
    and its body as it came (a chunked body with its chunk framing)."""
    try:
        head = await _read_head(reader)
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise _Closed from error
    fields = _headers(head)
    if fields.get("expect", "").lower() == "100-continue":
        lines = head.split(b"\r\n")
        head = b"\r\n".join(line for line in lines if not line.lower().startswith(b"expect:"))
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = b"".join([chunk async for chunk in _chunks(reader)])
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0") or 0))
    return head, body


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """A chunked body's bytes as they come, framing included, through its trailer."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        yield size_line
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:  # trailer fields, then the blank line
                line = await reader.readuntil(b"\r\n")
                yield line
                if line == b"\r\n":
                    return
        yield await reader.readexactly(size + 2)


async def _relay_answer(
    upstream: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str
) -> bool:
    """Stream one answer from the server to the client; whether the connection may be kept."""
    while True:
        head = await _read_head(upstream)
        status = int(head.split(b" ", 2)[1])
        writer.write(head)
        if not 100 <= status < 200:
            break
    fields = _headers(head)
    keep = fields.get("connection", "").lower() != "close" and head.startswith(b"HTTP/1.1")
    if method == "HEAD" or status in (204, 304):
        pass
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        async for piece in _chunks(upstream):
            writer.write(piece)
            await writer.drain()
    elif "content-length" in fields:
        left = int(fields["content-length"])
        while left:
            piece = await upstream.read(min(left, _CHUNK))
            if not piece:
                raise asyncio.IncompleteReadError(b"", left)
            writer.write(piece)
            await writer.drain()
            left -= len(piece)
    else:  # delimited by the server closing the connection
        while piece := await upstream.read(_CHUNK):
            writer.write(piece)
            await writer.drain()
        keep = False
    await writer.drain()
    return keep


@contextmanager
def disturbing_proxy(upstream_url: str, seed: int, slow_seconds: float = 2.0) -> Iterator[Proxy]:
    """A proxy in front of `upstream_url` for the length of a block, calm until told."""
    proxy = Proxy(upstream_url, seed, slow_seconds)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
