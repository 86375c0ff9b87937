"""The HTTP app of `clonebench review`. Pages are rendered here from the store (`rows.py`); every
act a reviewer takes is one POST that `curate.reviews.review` applies in one short transaction.

GET  /                          the speakers, their enrolment and review counts; search across them
GET  /speakers/{speaker}        the review page (templates/speaker.html.j2 + static/review.js)
GET  /api/speakers              the speakers, as JSON
GET  /api/speakers/{speaker}    the page's data: enrolment, reference and every clip's row
GET  /api/search?q=TEXT         clips of any speaker whose text, id or file name contains TEXT
GET  /api/clips/{id}/wave       peaks of the clip with a second of its recording either side
GET  /audio/{id}                the clip's 32 kHz file (only clips the store names are served)
POST /api/clips/{id}/review     {action, version, reason?, note?, text?} -> the clip's row and the enrolment
GET  /api/reviews.csv           every review, as `clonebench review export` writes it
GET  /login, POST /login        with --api-keys: a key (its name is the reviewer) for a session cookie
GET  /healthz                   liveness

The store keeps one writer: each request opens it for its own moment under a process-wide lock,
so `vet` can run between requests; a request that finds it held gets 503 + Retry-After. Writes
must be `application/json` (a cross-site form cannot send that without the browser asking
first) and the session cookie is SameSite=Strict. Errors are one line of JSON, `{"error": ...}`;
a conflicting save is 409 with the clip as it stands (`"clip"`).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from clonebench.core.errors import StoreInUse, UserError
from clonebench.core.keys import LOOPBACK, bearer, is_loopback, key_owner
from clonebench.curate.reviews import ReviewConflict, ReviewRequest, review, reviews_csv
from clonebench.store import Store

from . import rows
from .options import ReviewOptions
from .pages import index_html, login_html, speaker_html

COOKIE = "clonebench_review"
PUBLIC = ("/login", "/healthz", "/favicon.ico")


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str
    version: int
    reason: str | None = None
    note: str | None = None
    text: str | None = None
    machine: str | None = None    # the rules' verdict the page showed (a row's `machine`)


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None, clip: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers, self.clip = status, message, headers or {}, clip


class StoreAccess:
    """One open at a time in this process, each for the length of one request. The process lock
    is never held while waiting for another command's lock: each try is one attempt, and a
    request waits between tries, so a busy store costs every request its own wait only."""

    def __init__(self, opts: ReviewOptions):
        self.opts = opts
        self.lock = threading.Lock()

    @contextmanager
    def open(self, write: bool = False) -> Iterator[Store]:
        deadline = time.monotonic() + self.opts.store_wait_s
        while True:
            with self.lock:
                try:
                    store = Store(self.opts.db, read_only=not write, lock_wait_s=0)
                except StoreInUse:
                    store = None
                if store is not None:
                    with store:
                        yield store
                    return
            if time.monotonic() >= deadline:
                raise Refused(503, "the store is in use by another clonebench command (vet?): try again in a moment",
                              {"Retry-After": "2"})
            time.sleep(0.1)


class Sessions:
    """Logged-in browsers: a random token (the cookie) -> the key's name, for `TTL_S`; the oldest
    go first beyond `MAX`. Forgotten on restart."""
    TTL_S, MAX = 12 * 3600, 1000

    def __init__(self):
        self.names: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def start(self, name: str) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.names[token] = (name, time.monotonic() + self.TTL_S)
            while len(self.names) > self.MAX:
                self.names.pop(next(iter(self.names)))
        return token

    def name(self, token: str) -> str | None:
        with self.lock:
            found = self.names.get(token)
            if found is None or found[1] < time.monotonic():
                self.names.pop(token, None)
                return None
            return found[0]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read as it comes (chunked or not), refused past `limit` bytes."""
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(413, f"request body over {limit} bytes")
    except ClientDisconnect:   # nobody to answer; nothing was written
        raise Refused(400, "the client left before sending the whole body") from None
    return bytes(body)


def create_app(opts: ReviewOptions) -> FastAPI:
    app = FastAPI(title="clonebench review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.opts = opts
    app.state.access = StoreAccess(opts)
    app.state.sessions = Sessions()
    local = is_loopback(opts.host)

    @app.middleware("http")
    async def gate(request: Request, call_next):
        request.state.reviewer = opts.reviewer
        if local and (request.url.hostname or "") not in LOOPBACK:
            # a page elsewhere whose name was made to point here (DNS rebinding) cannot use a loopback server
            return _error(421, f"this server answers to 127.0.0.1 and localhost only, not {request.url.hostname!r}")
        if opts.keys and request.url.path not in PUBLIC:
            name = key_owner(opts.keys, bearer(request.headers.get("authorization", "")))
            name = name or app.state.sessions.name(request.cookies.get(COOKIE, ""))
            if name is None:
                if request.method == "GET" and not request.url.path.startswith("/api/"):
                    return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
                return _error(401, "log in first: open /login, or send Authorization: Bearer KEY")
            request.state.reviewer = name
        if request.method == "POST":
            size = int(request.headers.get("content-length") or 0)
            if size > opts.max_body_bytes:
                return _error(413, f"request body over {opts.max_body_bytes} bytes")
        return await call_next(request)

    app.add_exception_handler(Refused, lambda r, e: _error(e.status, e.message, e.headers, e.clip))
    app.add_exception_handler(UserError, lambda r, e: _error(422, str(e)))
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, lambda r, e: _error(
        e.status_code, f"nothing here: {r.url.path}" if e.status_code == 404 else str(e.detail), e.headers))
    _routes(app)
    return app


def _error(status: int, message: str, headers: dict | None = None, clip: dict | None = None) -> JSONResponse:
    body = {"error": " ".join(str(message).split())}
    if clip is not None:
        body["clip"] = clip
    return JSONResponse(body, status, headers=headers)


async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
    first = e.errors()[0] if e.errors() else {}
    if first.get("type") == "json_invalid":
        return _error(422, "the body is not valid JSON")
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
    return _error(422, f"{where or 'body'}: {first.get('msg', 'invalid request')}")


def _routes(app: FastAPI) -> None:
    access: StoreAccess = app.state.access

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "store": str(app.state.opts.db)}

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        with access.open() as store:
            return HTMLResponse(index_html(_speakers(store), request.state.reviewer, bool(app.state.opts.keys)))

    @app.get("/api/speakers")
    def speakers() -> list[dict]:
        with access.open() as store:
            return _speakers(store)

    @app.get("/speakers/{speaker}", response_class=HTMLResponse)
    def speaker_page(speaker: str, request: Request) -> HTMLResponse:
        with access.open() as store:
            page = rows.speaker_page(store, speaker)
        if page is None:
            raise Refused(404, f"no speaker {speaker!r} in the store")
        return HTMLResponse(speaker_html(page, request.state.reviewer, bool(app.state.opts.keys)))

    @app.get("/api/speakers/{speaker}")
    def speaker_data(speaker: str) -> dict:
        with access.open() as store:
            page = rows.speaker_page(store, speaker)
        if page is None:
            raise Refused(404, f"no speaker {speaker!r} in the store")
        return page.to_json()

    @app.get("/api/search")
    def search(q: str = "") -> dict:
        if len(q) > 200:
            raise Refused(422, "q: at most 200 characters")
        with access.open() as store:
            found = rows.search(store, q)
        return {"query": q, "clips": [r.to_json() for r in found]}

    @app.get("/api/clips/{clip_id}/wave")
    def wave(clip_id: str) -> dict:
        with access.open() as store:
            view = store.clip_view(clip_id)
        if view is None:
            raise Refused(404, f"no clip {clip_id!r} in the store")
        try:
            return rows.wave(view).to_json()
        except (OSError, RuntimeError):   # the recording and the clip's own file are both gone
            raise Refused(404, f"the audio of clip {clip_id} is gone ({view.clip.path_16k})") from None

    @app.get("/audio/{clip_id}")
    def clip_audio(clip_id: str) -> FileResponse:
        with access.open() as store:
            view = store.clip_view(clip_id.removesuffix(".wav"))
        if view is None:
            raise Refused(404, f"no clip {clip_id!r} in the store")
        if not Path(view.clip.path_32k).is_file():
            raise Refused(404, f"the file of clip {clip_id} is gone ({view.clip.path_32k})")
        return FileResponse(view.clip.path_32k, media_type="audio/wav")

    @app.post("/api/clips/{clip_id}/review")
    async def act(clip_id: str, request: Request) -> dict:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise Refused(415, "send the review as application/json")
        raw = await read_body(request, app.state.opts.max_body_bytes)
        try:
            body = ReviewBody.model_validate_json(raw)
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from None   # answered by _invalid, as FastAPI's own
        req = ReviewRequest(clip_id, body.action, body.version, body.reason, body.note, body.text, body.machine)
        return await asyncio.to_thread(_apply, access, req, request.state.reviewer)

    @app.get("/api/reviews.csv")
    def reviews_export() -> Response:
        with access.open() as store:
            text = reviews_csv(store)
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="reviews.csv"'})

    @app.get("/login", response_class=HTMLResponse)
    def login_form(next: str = "/") -> HTMLResponse:
        return HTMLResponse(login_html(_local(next), None))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await read_body(request, 4096)).decode("utf-8", "replace"))
        key, goto = (form.get("key") or [""])[0], _local((form.get("next") or ["/"])[0])
        name = key_owner(app.state.opts.keys, key) if app.state.opts.keys else app.state.opts.reviewer
        if name is None:
            return HTMLResponse(login_html(goto, "that is not one of this server's keys"), 401)
        token = app.state.sessions.start(name)
        answer = RedirectResponse(goto, 303)
        answer.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return answer

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)


def _local(path: str) -> str:
    """Only a path on this server may follow a login (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def _apply(access: StoreAccess, req: ReviewRequest, reviewer: str) -> dict:
    with access.open(write=True) as store:
        if store.clip_view(req.clip_id) is None:
            raise Refused(404, f"no clip {req.clip_id!r} in the store")
        try:
            out = review(store, req, reviewer)
        except ReviewConflict as e:
            raise Refused(409, str(e), clip=rows.clip_row(store, e.view).to_json()) from None
        state = rows.speaker_state(store, out.view.clip.speaker)
        row = rows.clip_row(store, out.view, state)
    return {"review_id": out.review_id, "clip": row.to_json(),
            "enrolment_before": rows.enrolment_json(out.enrolment_before, state.goal_s),
            "enrolment": rows.enrolment_json(out.enrolment, state.goal_s),
            "reference": state.reference, "reference_clip": state.reference_clip}


def _speakers(store: Store) -> list[dict]:
    counts = store.review_counts()
    out = []
    for s in store.speakers():
        e = store.enrolment(s.speaker)
        views = store.clip_views(s.speaker)
        out.append({"speaker": s.speaker, "lang": s.lang, "status": e.status if e else "not decided",
                    "accepted_s": e.accepted_s if e else 0.0, "clips": len(views),
                    "accepted": sum(v.status == "accepted" for v in views),
                    "rejected": sum(v.status == "rejected" for v in views),
                    "conflicts": sum(v.conflict is not None for v in views),
                    **counts.get(s.speaker, {"reviewed": 0, "overruled": 0, "acts": 0})})
    return out


def run(opts: ReviewOptions) -> None:
    """`clonebench review`: serve the review app until interrupted."""
    import uvicorn

    uvicorn.run(create_app(opts), host=opts.host, port=opts.port, log_level="info", access_log=False)
