"""`clonebench.testing.rawhttp` against real servers on loopback (a raw socketserver and a tiny
uvicorn app), and `clonebench.serve.docs.docs_html` on a real FastAPI app's OpenAPI document."""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Literal

import pytest
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from clonebench.serve.docs import docs_html
from clonebench.testing import rawhttp

MB = 1 << 20


# --- a raw HTTP server whose every misbehaviour is on purpose ------------------------------------------------------

class _Handler(socketserver.StreamRequestHandler):
    """One request per connection; the path picks the behaviour."""

    log: dict = {}

    def _body(self, headers: dict[str, str]) -> int:
        """Read the whole request body (chunked or Content-Length); its length."""
        if "chunked" in headers.get("transfer-encoding", ""):
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline()
        return len(self.rfile.read(int(headers.get("content-length", "0"))))

    def _send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def handle(self) -> None:
        path = self.rfile.readline().split()[1].decode()
        headers = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        if path == "/early401":  # answer before reading the body, then hang up
            self._send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad key here")
            return
        n = self._body(headers)
        if path == "/echo":
            text = f"{n} {headers.get('x-tag', '')}".encode()
            self._send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
            time.sleep(3)  # keep the connection open: the client must stop at Content-Length
        elif path == "/chunked":
            self._send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n")
            for part in (b"hello ", b"chunked ", b"world"):
                self._send(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self._send(b"0\r\nX-Trailer: t\r\n\r\n")
            time.sleep(3)
        elif path == "/cut":  # promises 1000 bytes, sends 100
            self._send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
        elif path == "/cutchunked":  # never sends the 0-chunk
            self._send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n")
        elif path == "/nolength":  # body delimited by close
            self._send(b"HTTP/1.1 200 OK\r\n\r\nuntil close")
        elif path == "/continue":
            self._send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
        elif path == "/wait":  # after the request: does the client hang up?
            self.log["wait_body"] = n
            self.request.settimeout(5)
            self.log["wait_eof"] = self.request.recv(1) == b""
        elif path == "/stream":  # an endless streamed answer: when does the client leave?
            self.log["stream_body"] = n
            self._send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            start = time.monotonic()
            try:
                while time.monotonic() - start < 10:
                    self._send(b"400\r\n" + b"a" * 1024 + b"\r\n")
                    time.sleep(0.005)
                self.log["stream_left"] = False
            except OSError:
                self.log["stream_left"] = True


@pytest.fixture(scope="module")
def raw_server() -> Iterator[tuple[str, int, dict]]:
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "127.0.0.1", server.server_address[1], _Handler.log
    finally:
        server.shutdown()
        server.server_close()


def _fifty_mb() -> Iterator[bytes]:
    block = b"z" * (64 * 1024)
    for _ in range(50 * MB // len(block)):
        yield block


def test_chunked_upload_is_read_whole(raw_server):
    host, port, _ = raw_server
    chunks = [b"a" * 1000, b"", b"b" * 70000, b"c"]  # the empty chunk must not end the body early
    t0 = time.monotonic()
    resp, sent = rawhttp.send_chunked(host, port, "/echo", {"X-Tag": "t1"}, iter(chunks), timeout=10)
    assert (resp.status, resp.body, resp.complete, sent) == (200, b"71001 t1", True, 71001)
    assert resp.headers["content-length"] == "8"
    assert time.monotonic() - t0 < 2.5  # stopped at Content-Length, not when the server hung up


def test_early_answer_stops_the_upload(raw_server):
    host, port, _ = raw_server
    t0 = time.monotonic()
    resp, sent = rawhttp.send_chunked(host, port, "/early401", {"Authorization": "Bearer nope"}, _fifty_mb(),
                                      timeout=20)
    assert resp.status == 401 and resp.body == b"bad key here" and resp.complete
    assert sent < 16 * MB, sent  # far less than the 50 MB offered
    assert time.monotonic() - t0 < 10


def test_content_length_and_chunked_answers(raw_server):
    host, port, _ = raw_server
    resp = rawhttp.request(host, port, "POST", "/echo", {"X-Tag": "cl"}, b"q" * 5000, timeout=10)
    assert (resp.status, resp.reason, resp.body, resp.complete) == (200, "OK", b"5000 cl", True)

    resp = rawhttp.request(host, port, "GET", "/chunked", {}, timeout=10)
    assert resp.status == 200 and resp.body == b"hello chunked world" and resp.complete
    assert resp.headers["x-multi"] == "a, b" and resp.headers["transfer-encoding"] == "chunked"

    resp = rawhttp.request(host, port, "GET", "/nolength", {}, timeout=10)
    assert resp.body == b"until close" and resp.complete

    resp = rawhttp.request(host, port, "GET", "/continue", {}, timeout=10)
    assert (resp.status, resp.headers, resp.body, resp.complete) == (204, {"x-a": "1"}, b"", True)


def test_incomplete_when_the_server_closes_mid_body(raw_server):
    host, port, _ = raw_server
    resp = rawhttp.request(host, port, "GET", "/cut", {}, timeout=10)
    assert resp.status == 200 and resp.body == b"x" * 100 and not resp.complete
    resp, sent = rawhttp.send_chunked(host, port, "/cutchunked", {}, [b"hi"], timeout=10)
    assert resp.status == 200 and resp.body == b"abcde" and not resp.complete and sent == 2


def test_send_and_leave(raw_server):
    host, port, log = raw_server
    # a whole request, then gone without reading anything
    assert rawhttp.send_and_leave(host, port, "POST", "/wait", {}, b"w" * 3000) == b""
    deadline = time.monotonic() + 5
    while "wait_eof" not in log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log["wait_body"] == 3000 and log["wait_eof"] is True

    # part of a streamed answer, then a reset
    got = rawhttp.send_and_leave(host, port, "POST", "/stream", {}, b"s" * 10, read_bytes=3000, after_s=0.1,
                                 rst=True)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and len(got) == 3000
    deadline = time.monotonic() + 8
    while "stream_left" not in log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log["stream_body"] == 10 and log["stream_left"] is True


def test_no_server_answer_is_an_error():
    with socket.socket() as s:  # a listener that accepts and closes without a word
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]

        def hang_up() -> None:
            conn, _ = s.accept()
            conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        with pytest.raises(ConnectionError):
            rawhttp.request("127.0.0.1", port, "GET", "/", {}, timeout=5)


# --- the same against uvicorn, the server the voice service runs on ------------------------------------------------

@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[tuple[str, int]]:
    import uvicorn

    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request):
        if request.headers.get("authorization") != "Bearer good":
            return JSONResponse({"detail": "bad key"}, status_code=401)
        total = 0
        async for part in request.stream():
            total += len(part)
            if total > 1 * MB:
                return JSONResponse({"detail": "too large"}, status_code=413)
        return {"bytes": total}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_uvicorn_early_401_and_413(uvicorn_server):
    host, port = uvicorn_server
    resp, sent = rawhttp.send_chunked(host, port, "/upload", {"Authorization": "Bearer nope"}, _fifty_mb(),
                                      timeout=20)
    assert resp.status == 401 and resp.complete and b"bad key" in resp.body
    assert sent < 16 * MB, sent

    resp, sent = rawhttp.send_chunked(host, port, "/upload", {"Authorization": "Bearer good"}, _fifty_mb(),
                                      timeout=20)
    assert resp.status == 413 and b"too large" in resp.body
    assert 1 * MB < sent < 20 * MB, sent

    resp, sent = rawhttp.send_chunked(host, port, "/upload", {"Authorization": "Bearer good"},
                                      [b"x" * 1000] * 100, timeout=20)
    assert (resp.status, resp.body, sent) == (200, b'{"bytes":100000}', 100000)


# --- the offline docs page ------------------------------------------------------------------------------------------

class Style(BaseModel):
    """How to say it."""

    energy: float = Field(0.5, ge=0.0, le=1.0, description="calm to excited")


class Speech(BaseModel):
    text: str = Field(..., min_length=1, max_length=500, description="What to say; <b>not</b> markup")
    voice: str = Field("alice", description="an enrolled speaker")
    format: Literal["wav", "mp3", "pcm"] = "wav"
    speed: float = Field(1.0, ge=0.5, le=2.0, description="playback rate")
    seed: int | None = Field(None, ge=0)
    style: Style | None = None


class Voice(BaseModel):
    name: str


def _app() -> FastAPI:
    bearer = HTTPBearer()
    app = FastAPI(title="Voice <API>", version="9.9.1", description="Speech & voices, offline.")

    @app.post("/v1/tts", tags=["speech"], summary="Synthesize speech", response_class=Response,
              responses={200: {"content": {"audio/wav": {}}, "description": "the WAV audio"},
                         401: {"description": "missing or unknown API key"}})
    def tts(body: Speech, cred: HTTPAuthorizationCredentials = Depends(bearer)) -> Response:
        return Response(b"", media_type="audio/wav")

    @app.get("/v1/voices/{lang}", tags=["voices"], description="Voices of a language.")
    def voices(lang: str, limit: int = Query(10, ge=1, le=100, description="at most this many"),
               prefix: str | None = None, cred: HTTPAuthorizationCredentials = Depends(bearer)) -> list[Voice]:
        return []

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    return app


def _section(page: str, anchor: str) -> str:
    m = re.search(rf"<section id='{anchor}'>.*?</section>", page, re.S)
    assert m, anchor
    return m.group(0)


def test_docs_page_from_a_real_app():
    page = docs_html(_app().openapi())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<title>Voice &lt;API&gt;</title>" in page and "9.9.1" in page and "Speech &amp; voices, offline." in page
    # offline: no scripts, no external addresses
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "@import" not in page and "url(" not in page

    tts = _section(page, "post-v1-tts")
    assert "/v1/tts" in tts and "Synthesize speech" in tts
    assert "needs Authorization: Bearer KEY" in tts
    for field in ("text", "voice", "format", "speed", "seed", "style"):
        assert f"<code>{field}</code>" in tts
    assert "length ≥ 1" in tts and "length ≤ 500" in tts
    assert "≥ 0.5" in tts and "≤ 2.0" in tts and "≥ 0" in tts
    assert "one of: &quot;wav&quot;, &quot;mp3&quot;, &quot;pcm&quot;" in tts
    assert "<code>&quot;alice&quot;</code>" in tts and "<code>1.0</code>" in tts
    assert "<h5>Style</h5>" in tts and "<code>energy</code>" in tts and "≤ 1.0" in tts  # the nested model
    assert "What to say; &lt;b&gt;not&lt;/b&gt; markup" in tts and "<b>not</b>" not in page
    assert "<code>audio/wav</code>" in tts and "the WAV audio" in tts
    assert "<code>401</code>" in tts and "missing or unknown API key" in tts
    assert "<code>422</code>" in tts and "HTTPValidationError" in tts
    assert "<code>application/json</code> — Speech" in tts

    voices = _section(page, "get-v1-voices-lang")
    assert "needs Authorization: Bearer KEY" in voices and "Voices of a language." in voices
    assert re.search(r"<code>limit</code></td><td>query</td><td>integer</td><td>no</td><td><code>10</code></td>"
                     r"<td>≥ 1; ≤ 100</td><td class=desc>at most this many</td>", voices)
    assert re.search(r"<code>lang</code></td><td>path</td><td>string</td><td>yes</td>", voices)
    assert "<code>prefix</code></td><td>query</td><td>string | null</td>" in voices
    assert "array of Voice" in voices

    health = _section(page, "get-healthz")
    assert "needs" not in health

    # grouped by tag: speech and voices first, the untagged route last; every operation linked from the top
    assert page.index(">speech</h2>") < page.index("<section id='post-v1-tts'>") < page.index(">voices</h2>")
    assert page.index(">other</h2>") < page.index("<section id='get-healthz'>")
    for anchor in ("post-v1-tts", "get-v1-voices-lang", "get-healthz"):
        assert f"<a href='#{anchor}'>" in page


def test_docs_page_from_a_hand_written_document():
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1"},
        "security": [{"key": []}],
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}},
            "parameters": {"Q": {"name": "q", "in": "query", "required": True, "schema": {"type": "string"},
                                 "description": "<i>query</i>"}},
            "schemas": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Node"}}}},
        },
        "paths": {
            "/b": {"get": {"parameters": [{"$ref": "#/components/parameters/Q"}], "responses": {}}},
            "/a/{id}": {"put": {"security": [],
                                "requestBody": {"content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/Node"}}}},
                                "responses": {"200": {"description": "ok", "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/Node"}}}}}}},
        },
    }
    page = docs_html(doc)
    assert page.index("id='get-b'") < page.index("id='put-a-id'")  # no tags: path order
    assert "needs header X-Key: KEY" in _section(page, "get-b")
    assert "needs" not in _section(page, "put-a-id")  # the operation opts out
    assert "&lt;i&gt;query&lt;/i&gt;" in page and "<code>q</code></td><td>query</td><td>string</td><td>yes</td>" in page
    put = _section(page, "put-a-id")
    assert put.count("<code>child</code>") == 1  # a self-referencing schema is shown once
    assert "<code>application/json</code> — Node" in put
