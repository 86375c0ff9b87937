"""The HTTP routes of `clonebench serve`: each parses, asks the `Service` (on `app.state.service`)
and maps errors to their status; `create_app` builds the app, `run` serves it.

POST /v1/tts            {text, speaker, lang, format: wav|pcm|flac, stream, seed, speed, top_k, top_p,
                        temperature} -> audio; with stream=true, sentence by sentence as each is ready
                        (wav: a header with an open length, then 16-bit PCM; pcm: raw 16-bit PCM, the
                        rate in the X-Sample-Rate header)
POST /v1/audio/speech   OpenAI's speech API: {model, input, voice, response_format, speed}
GET  /v1/speakers       the enrolled speakers, their status, accepted seconds and encoder
GET  /healthz           liveness, queue depth, the model's GPT-SoVITS version and the checkpoints' SHA-256
GET  /metrics           Prometheus: requests by status, latency, time to first audio, RTF,
                        queue depth, batch sizes

Every error is one line of JSON, {"error": "..."}, with its status: 401 (API key), 404 (speaker),
409 (speaker not ready), 413 (text or body too long), 422 (bad request or text the front end
cannot read), 503 + Retry-After (queue full), 504 (timed out). The server keeps serving.
Every synthesis, served or refused, is a row of the request log (`store.servelog`).
"""

from __future__ import annotations

import asyncio
import hmac
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .options import ServeOptions, hash_key
from .protocol import MEDIA, HTTPError, SpeechRequest, TTSRequest, audio_headers, error_response
from .service import Service, SpeechJob

router = APIRouter()


def service_of(request: Request) -> Service:
    return request.app.state.service


async def authorized(request: Request) -> None:
    key_hashes = request.app.state.opts.key_hashes
    if not key_hashes:
        return
    auth = request.headers.get("authorization", "")
    key = auth[7:] if auth.lower().startswith("bearer ") else ""
    digest = hash_key(key) if key else ""
    if not any(hmac.compare_digest(digest, h) for h in key_hashes):
        raise HTTPError(401, "missing or wrong API key (send Authorization: Bearer KEY)",
                        {"WWW-Authenticate": "Bearer"})


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    return service_of(request).health()


@router.get("/metrics", dependencies=[Depends(authorized)])
async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(service_of(request).metrics_text(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/speakers", dependencies=[Depends(authorized)])
async def speakers(request: Request) -> list[dict]:
    return await asyncio.to_thread(service_of(request).speakers)


@router.post("/v1/tts", dependencies=[Depends(authorized)])
async def tts(body: TTSRequest, request: Request):
    return await _speak(request, SpeechJob.from_tts(body))


@router.post("/v1/audio/speech", dependencies=[Depends(authorized)])
async def speech(body: SpeechRequest, request: Request):
    return await _speak(request, SpeechJob.from_speech(body))


async def _speak(request: Request, job: SpeechJob) -> Response:
    audio = await service_of(request).synthesize(job, request.is_disconnected)
    media, headers = MEDIA[job.format], audio_headers(job.request_id)
    if job.stream:
        return StreamingResponse(audio, media_type=media, headers=headers)
    return Response(audio, media_type=media, headers=headers)


# -- errors: every one is {"error": "..."} with its status -------------------------------------------
async def _http_error(request: Request, e: HTTPError):
    return error_response(e.status, e.message, e.headers)


async def _invalid(request: Request, e: RequestValidationError):
    first = e.errors()[0] if e.errors() else {}
    if first.get("type") == "json_invalid":
        return error_response(422, "the body is not valid JSON")
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return error_response(422, f"{where or 'body'}: {first.get('msg', 'invalid request')}")


async def _starlette(request: Request, e: StarletteHTTPException):
    return error_response(e.status_code, str(e.detail))


async def _limit_body(request: Request, call_next):
    limit = request.app.state.opts.max_body_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        return error_response(413, f"request body over {limit} bytes")
    return await call_next(request)


@asynccontextmanager
async def _lifespan(app: FastAPI):
    service = await asyncio.to_thread(Service, app.state.opts)
    service.start()
    app.state.service = service
    try:
        yield
    finally:
        service.stop()


def create_app(opts: ServeOptions) -> FastAPI:
    app = FastAPI(title="clonebench voice service", version="1", lifespan=_lifespan,
                  description="The voices enrolled with `clonebench vet`, synthesized by a GPT-SoVITS v2 model.")
    app.state.opts = opts
    app.middleware("http")(_limit_body)
    app.add_exception_handler(HTTPError, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _starlette)
    app.include_router(router)
    return app


def run(opts: ServeOptions) -> None:
    """`clonebench serve`: load, then serve until interrupted."""
    import uvicorn

    uvicorn.run(create_app(opts), host=opts.host, port=opts.port, log_level="info", access_log=True)
