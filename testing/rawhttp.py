"""A raw-socket HTTP/1.1 client for tests: what httpx cannot do.

- `send_chunked` streams a (possibly huge) chunked request body while watching for an early answer
  (a 401 or 413 sent before the body is read) and stops sending as soon as one arrives;
- `send_and_leave` sends a request and hangs up before (or part-way through) the answer;
- `request` is a plain Content-Length request, parsed by the same strict reader.

Responses are parsed by their framing (Content-Length, chunked, or until close), so a server that
keeps the connection open after answering does not make the client wait.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_RECV = 65536
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass(frozen=True)
class RawResponse:
    """A parsed answer. `complete` is False when the server closed before the body's framing ended."""

    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    complete: bool
    reason: str = ""


class _Reader:
    """Buffered reads from a socket; a reset counts as end of stream."""

    def __init__(self, sock: socket.socket, buf: bytes = b"") -> None:
        self.sock, self.buf, self.eof = sock, buf, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(_RECV)
        except _GONE:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self) -> bytes | None:
        """One CRLF-terminated line without its ending, or None at end of stream."""
        while (i := self.buf.find(b"\n")) < 0:
            if not self._fill():
                return None
        out, self.buf = self.buf[:i], self.buf[i + 1:]
        return out.rstrip(b"\r")

    def exact(self, n: int) -> bytes:
        """Up to n bytes: fewer only at end of stream."""
        while len(self.buf) < n and self._fill():
            pass
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out


def _head(method: str, path: str, host: str, port: int, headers: Mapping[str, str],
          extra: Mapping[str, str]) -> bytes:
    """Request line and headers; `extra` fills in names the caller did not give (case-insensitive)."""
    given = {k.lower() for k in headers}
    allh = dict(headers)
    for k, v in extra.items():
        if k.lower() not in given:
            allh[k] = v
    if "host" not in given:
        allh["Host"] = f"{host}:{port}"
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in allh.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _read_response(reader: _Reader, method: str = "GET") -> RawResponse:
    """Status line, headers and body (skipping any 1xx interim answers)."""
    while True:
        status_line = reader.line()
        while status_line == b"":  # tolerate stray blank lines before the status line
            status_line = reader.line()
        if status_line is None:
            raise ConnectionError("the server closed the connection without answering")
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP status line: {status_line[:200]!r}")
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        while (line := reader.line()) not in (b"", None):
            name, _, value = line.decode("latin-1").partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if line is None:  # closed inside the headers
            return RawResponse(status, headers, b"", False, reason)
        if not 100 <= status < 200 or status == 101:
            break
    if method.upper() == "HEAD" or status in (204, 304) or status == 101:
        return RawResponse(status, headers, b"", True, reason)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(reader, status, headers, reason)
    if "content-length" in headers:
        n = int(headers["content-length"].split(",")[0])
        body = reader.exact(n)
        return RawResponse(status, headers, body, len(body) == n, reason)
    return RawResponse(status, headers, reader.rest(), True, reason)  # delimited by close


def _read_chunked(reader: _Reader, status: int, headers: dict[str, str], reason: str) -> RawResponse:
    body = bytearray()
    while True:
        size_line = reader.line()
        if size_line is None:
            return RawResponse(status, headers, bytes(body), False, reason)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (trailer := reader.line()) not in (b"", None):
                pass
            return RawResponse(status, headers, bytes(body), trailer is not None, reason)
        data = reader.exact(size)
        body += data
        if len(data) < size or reader.line() is None:
            return RawResponse(status, headers, bytes(body), False, reason)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(host: str, port: int, method: str, path: str, headers: Mapping[str, str] | None = None,
            body: bytes = b"", *, timeout: float = 30) -> RawResponse:
    """One plain request with a Content-Length body (and `Connection: close` unless given)."""
    extra = {"Content-Length": str(len(body)), "Connection": "close"}
    with _connect(host, port, timeout) as sock:
        try:
            sock.sendall(_head(method, path, host, port, headers or {}, extra) + body)
        except _GONE:
            pass  # the server may already have answered; read what it said
        return _read_response(_Reader(sock), method)


def send_chunked(host: str, port: int, path: str, headers: Mapping[str, str] | None, chunks: Iterable[bytes], *,
                 timeout: float = 30, method: str = "POST") -> tuple[RawResponse, int]:
    """POST `chunks` with `Transfer-Encoding: chunked`, stopping as soon as the server answers or
    hangs up. Returns the parsed answer and how many body bytes were handed to the socket."""
    extra = {"Transfer-Encoding": "chunked", "Connection": "close"}
    sock = _connect(host, port, timeout)
    sent = 0
    try:
        sock.sendall(_head(method, path, host, port, headers or {}, extra))
        sock.setblocking(False)
        deadline = time.monotonic() + timeout

        def push(frame: bytes, payload_at: int, payload_len: int) -> bool:
            """Send one frame, watching for an answer; False when the server answered or left."""
            nonlocal sent
            off = 0
            while off < len(frame):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the server neither read the body nor answered")
                readable, writable, _ = select.select([sock], [sock], [], left)
                if readable:
                    return False
                if writable:
                    try:
                        n = sock.send(frame[off:off + _RECV])
                    except BlockingIOError:
                        continue
                    except _GONE:
                        return False
                    before = min(max(off - payload_at, 0), payload_len)
                    off += n
                    sent += min(max(off - payload_at, 0), payload_len) - before
            return True

        for chunk in chunks:
            if not chunk:
                continue  # an empty chunk would end the body
            prefix = f"{len(chunk):x}\r\n".encode()
            if not push(prefix + chunk + b"\r\n", len(prefix), len(chunk)):
                break
        else:
            push(b"0\r\n\r\n", 0, 0)
        sock.setblocking(True)
        sock.settimeout(max(deadline - time.monotonic(), 0.1))
        return _read_response(_Reader(sock), method), sent
    finally:
        sock.close()


def send_and_leave(host: str, port: int, method: str, path: str, headers: Mapping[str, str] | None,
                   body: bytes = b"", *, after_s: float = 0.0, read_bytes: int = 0, rst: bool = False,
                   timeout: float = 30) -> bytes:
    """Send a whole request, read up to `read_bytes` of the raw answer, wait `after_s`, then close the
    socket without reading more (with `rst`, SO_LINGER 0 makes the close a TCP reset). Returns the
    bytes read (status line and headers included)."""
    sock = _connect(host, port, timeout)
    got = bytearray()
    try:
        sock.sendall(_head(method, path, host, port, headers or {}, {"Content-Length": str(len(body))}) + body)
        while len(got) < read_bytes:
            try:
                data = sock.recv(min(_RECV, read_bytes - len(got)))
            except _GONE:
                break
            if not data:
                break
            got += data
        if after_s > 0:
            time.sleep(after_s)
    finally:
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return bytes(got)
