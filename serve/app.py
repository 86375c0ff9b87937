"""The HTTP app of `clonebench serve`: clonebench's own routes here, OpenAI's speech API in
`openai_api.py`, GPT-SoVITS api_v2's in `api_v2.py`. Each route parses, asks the `Service` (on
`app.state.service`) and maps errors to their status; `gate.Gate` sees every request first
(id, key, body limit, the log row of a refusal). `create_app` builds the app, `run` serves it.

POST /v1/tts            {text, speaker, lang, format: wav|pcm|flac, stream, seed, speed, top_k, top_p,
                        temperature} -> audio at 32 kHz; with stream=true, sentence by sentence as each
                        is ready (a file that is valid from its first byte: `encoding.AudioStream`)
GET  /v1/speakers       every speaker: status, whether it can be served and why not, its prompt
GET  /healthz           liveness, queue depth, speakers servable, the model's version and SHA-256s
GET  /metrics           Prometheus: requests by status, latency, time to first audio, RTF, queue, batches
GET  /docs              the API, rendered here from the OpenAPI schema (no CDN: works offline)

Errors are `{"error": "..."}` (OpenAI's routes: `{"error": {"message", "type", "code"}}`) with
their status: 401 (API key), 403 (a file outside --ref-dir/--weights-dir), 404 (speaker, file),
405 (+ Allow), 409 (speaker not servable), 413 (text or body too long), 422 (bad request or text
the front end cannot read), 499 (client left; log only), 503 + Retry-After (queue full), 504
(timed out). Every request to a synthesis route is one row of the request log (`store.servelog`).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .gate import PUBLIC, Gate
from .options import ServeOptions
from .protocol import ErrorResponse, HTTPError, OpenAIErrorResponse, TTSRequest, error_response
from .respond import audio_answer, new_job, service_of, speak
from .service import Service, resolve_seed

router = APIRouter()

# the answers every synthesis route documents (the gate and the handlers below make them)
ERRORS = {status: {"model": ErrorResponse, "description": what} for status, what in (
    (401, "missing or wrong API key"), (404, "unknown speaker"), (409, "speaker not servable"),
    (413, "text or body too long"), (422, "bad request, or text the front end cannot read"),
    (503, "queue full (Retry-After)"), (504, "timed out"))}


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    return await asyncio.to_thread(service_of(request).health)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(service_of(request).metrics_text(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/speakers")
async def speakers(request: Request) -> list[dict]:
    return await asyncio.to_thread(service_of(request).speakers)


@router.post("/v1/tts", response_class=Response,
             responses={**audio_answer(("wav", "pcm", "flac"), "the audio at 32 kHz, 16-bit mono"), **ERRORS})
async def tts(body: TTSRequest, request: Request):
    from clonebench.model.decode import SamplingParams

    params = SamplingParams(top_k=body.top_k, top_p=body.top_p, temperature=body.temperature)
    job = new_job(request, "/v1/tts", text=body.text, speaker=body.speaker, lang=body.lang, format=body.format,
                  stream=body.stream, params=params, seed=resolve_seed(body.seed), speed=body.speed)
    return await speak(request, job)


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    from .docs import docs_html

    return HTMLResponse(docs_html(request.app.openapi()))


# -- errors: each in its API's shape, with its status -----------------------------------------------
async def _http_error(request: Request, e: HTTPError):
    return error_response(e.status, e.message, e.headers, request.url.path)


async def _invalid(request: Request, e: RequestValidationError):
    first = e.errors()[0] if e.errors() else {}
    if first.get("type") == "json_invalid":
        return error_response(422, "the body is not valid JSON", path=request.url.path)
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
    return error_response(422, f"{where or 'body'}: {first.get('msg', 'invalid request')}", path=request.url.path)


async def _starlette(request: Request, e: StarletteHTTPException):
    return error_response(e.status_code, str(e.detail), e.headers, request.url.path)   # 405 keeps its Allow


@asynccontextmanager
async def _lifespan(app: FastAPI):
    service = await asyncio.to_thread(Service, app.state.opts)
    service.start()
    app.state.service = service
    try:
        yield
    finally:
        service.stop()


def _openapi(app: FastAPI):
    """FastAPI's schema, plus the bearer key every route outside the gate's PUBLIC list needs."""
    def schema() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, operations in doc["paths"].items():
                for op in operations.values():
                    if path not in PUBLIC:
                        op["security"] = [{"bearer": []}]
                    for code, answer in op.get("responses", {}).items():
                        if code == "422" and "HTTPValidationError" in str(answer):   # our 422 is our error body
                            model = OpenAIErrorResponse if path.startswith("/v1/audio") else ErrorResponse
                            answer["content"] = {"application/json": {"schema": {
                                "$ref": f"#/components/schemas/{model.__name__}"}}}
            app.openapi_schema = doc
        return app.openapi_schema
    return schema


def create_app(opts: ServeOptions) -> FastAPI:
    from . import api_v2, openai_api

    app = FastAPI(title="clonebench voice service", version="2", lifespan=_lifespan, docs_url=None, redoc_url=None,
                  description="The voices enrolled with `clonebench vet`, synthesized by a GPT-SoVITS model: "
                              "clonebench's API, OpenAI's speech API and GPT-SoVITS api_v2's /tts.")
    app.state.opts = opts
    app.add_middleware(Gate)
    app.add_exception_handler(HTTPError, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _starlette)
    app.include_router(router)
    app.include_router(openai_api.router)
    app.include_router(api_v2.router)
    app.openapi = _openapi(app)
    return app


def run(opts: ServeOptions) -> None:
    """`clonebench serve`: load, then serve until interrupted."""
    import uvicorn

    uvicorn.run(create_app(opts), host=opts.host, port=opts.port, log_level="info", access_log=True)
