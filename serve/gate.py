"""The gate every HTTP request passes before any route: its id, the API key, the body limit and,
for a synthesis route, the request log row of a request refused here or before its handler.

A plain ASGI middleware, not Starlette's `BaseHTTPMiddleware`: that one hides a client's
disconnect from `Request.is_disconnected()`, so a non-streamed request whose client left was
synthesized to the end. The order matters:
1. the key is checked before a byte of the body is read, so a client without a key cannot
   make the server read (and parse) a large upload;
2. the body is read here, up to `--max-body-bytes` + 1 bytes, whether it came with a
   Content-Length or chunked, and handed on to the route; a larger one gets 413 at once;
3. every answer carries `X-Request-Id`; a synthesis request the `Service` wrote no row for
   (401, 413, FastAPI's validation 422, 405; a stream whose client left before its first byte)
   is logged here when its answer is over, so the log has exactly one row per request.
"""

from __future__ import annotations

import hmac
import json
import uuid
from datetime import datetime

from starlette.datastructures import Headers, MutableHeaders

from clonebench.core.keys import bearer, hash_key

from .protocol import error_response

PUBLIC = ("/healthz", "/docs", "/openapi.json")
SYNTHESIS = ("/v1/tts", "/v1/audio/speech", "/tts")


def key_ok(key_hashes: frozenset[str], authorization: str) -> bool:
    if not key_hashes:
        return True
    key = bearer(authorization)
    digest = hash_key(key) if key else ""
    return any(hmac.compare_digest(digest, h) for h in key_hashes)


class Gate:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        request_id = state["request_id"] = uuid.uuid4().hex[:16]
        state["received_at"] = datetime.now()
        opts = scope["app"].state.opts
        path, headers = scope["path"], Headers(scope=scope)
        answer = _Answer(send, request_id)

        refusal = None
        if path not in PUBLIC and not key_ok(opts.key_hashes, headers.get("authorization", "")):
            refusal = (401, "missing or wrong API key (send Authorization: Bearer KEY)", {"WWW-Authenticate": "Bearer"})
        elif scope["method"] in ("POST", "PUT", "PATCH"):
            body = await _read_body(receive, headers, opts.max_body_bytes)
            if body is None:
                refusal = (413, f"request body over {opts.max_body_bytes} bytes", {"Connection": "close"})
            else:
                receive = _replay(body, receive)
        if refusal is not None:
            status, message, extra = refusal
            await error_response(status, message, extra, path)(scope, receive, answer.send)
        else:
            await self.app(scope, receive, answer.send)
        service = getattr(scope["app"].state, "service", None)
        if path in SYNTHESIS and service is not None and not service.take_logged(request_id):
            if answer.status is None or answer.status < 400:   # a stream whose client left before its audio began
                status, error = 499, "client disconnected before the audio began"
            else:
                status, error = answer.status, answer.error()
            service.log_refusal(request_id, state["received_at"], path, status, error)


class _Answer:
    """The response on its way out: adds the request id, remembers the status and an error's body."""

    def __init__(self, send, request_id: str):
        self._send, self.request_id = send, request_id
        self.status: int | None = None
        self._error = bytearray()

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            MutableHeaders(scope=message)["X-Request-Id"] = self.request_id
        elif message["type"] == "http.response.body" and (self.status or 200) >= 400 and len(self._error) < 4096:
            self._error += message.get("body", b"")
        await self._send(message)

    def error(self) -> str | None:
        """The message of an error body, either shape."""
        if not self._error:
            return None
        try:
            err = json.loads(self._error)["error"]
        except (ValueError, KeyError, TypeError):
            return self._error[:200].decode("utf-8", "replace")
        return err.get("message") if isinstance(err, dict) else str(err)


async def _read_body(receive, headers: Headers, limit: int) -> bytes | None:
    """The whole body, or None once it is known to be over `limit` (without reading the rest)."""
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            break
    return bytes(body)


def _replay(body: bytes, receive):
    """A `receive` that gives the route the body read here, then the client's own messages
    (so the route still hears a disconnect)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
