"""The HTTP API of `clonebench serve`.

POST /v1/tts            {text, speaker, lang, format: wav|pcm|flac, stream, seed, speed, top_k, top_p,
                        temperature} -> audio; with stream=true, sentence by sentence as each is ready
                        (wav: a header with an open length, then 16-bit PCM; pcm: raw 16-bit PCM, the
                        rate in the X-Sample-Rate header)
POST /v1/audio/speech   OpenAI's speech API: {model, input, voice, response_format, speed}
GET  /v1/speakers       the enrolled speakers, their status, accepted seconds and encoder
GET  /healthz           liveness, queue depth and the checkpoints' SHA-256
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
import logging
import struct
import threading
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Literal

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from clonebench.core.audio import pcm16
from clonebench.core.errors import UserError
from clonebench.model.synthesize import SENTENCE_GAP_S

from .options import ServeOptions, hash_key
from .voices import SpeakerNotReady, UnknownSpeaker, VoiceLibrary
from .worker import Cancelled, ContinuousWorker, QueueFull, Worker
from .worker import Request as Job

log = logging.getLogger("clonebench.serve")
SAMPLE_RATE = 32000
MEDIA = {"wav": "audio/wav", "pcm": "audio/L16", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg",
         "aac": "audio/aac"}


class TTSRequest(BaseModel):
    text: str = Field(description="What to say.")
    speaker: str = Field(description="An enrolled speaker (GET /v1/speakers).")
    lang: str = Field("auto", description="zh, en or auto (mixed).")
    format: Literal["wav", "pcm", "flac"] = "wav"
    stream: bool = False
    seed: int = 0
    speed: float = Field(1.0, ge=0.25, le=4.0)
    top_k: int = Field(15, ge=1, le=1025)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0, le=10.0)


class SpeechRequest(BaseModel):
    """OpenAI's `audio.speech.create` body; `voice` is an enrolled speaker."""
    model: str = "clonebench"
    input: str
    voice: str
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


STATUS_OF = [(UnknownSpeaker, 404), (SpeakerNotReady, 409), (QueueFull, 503), (UserError, 422)]


def _error_status(e: Exception) -> int:
    return next((code for kind, code in STATUS_OF if isinstance(e, kind)), 500)


def wav_header(sample_rate: int, n_samples: int | None = None) -> bytes:
    """A 16-bit mono WAV header; with no length, the sizes say 'unknown' (0xFFFFFFFF) for streaming."""
    data = 0xFFFFFFFF if n_samples is None else n_samples * 2
    riff = 0xFFFFFFFF if n_samples is None else 36 + data
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate,
                                                                          sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))


class Metrics:
    def __init__(self, max_batch: int):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("clonebench_requests", "Synthesis requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("clonebench_request_seconds", "Time from request to last audio byte",
                                 ["endpoint"], registry=self.registry)
        self.ttfa = Histogram("clonebench_time_to_first_audio_seconds", "Time from request to the first sentence",
                              registry=self.registry)
        self.rtf = Histogram("clonebench_rtf", "Synthesis seconds per audio second",
                             buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10), registry=self.registry)
        self.queue = Gauge("clonebench_queue_sentences", "Sentences waiting for the inference worker",
                           registry=self.registry)
        self.batch = Histogram("clonebench_batch_size", "Sentences per batched pass",
                               buckets=tuple(range(1, max_batch + 1)), registry=self.registry)


class Service:
    """Everything a running server holds: the model, the voices, the worker, the log, the metrics."""

    def __init__(self, opts: ServeOptions):
        from clonebench.core.config import data_root_for
        from clonebench.instruments.registry import sha256_file
        from clonebench.model.synthesize import Synthesizer
        from clonebench.store.servelog import ServeLog

        self.opts = opts
        self.synth = Synthesizer(opts.gpt, opts.sovits, content=opts.content, bert_folder=opts.bert,
                                 device=opts.device, threads=opts.threads, precision=opts.precision,
                                 keep_content=False)   # voices are prepared once each (LRU-cached)
        self.hashes = {"gpt_sha256": sha256_file(opts.gpt), "sovits_sha256": sha256_file(opts.sovits)}
        self.lock = threading.Lock()        # the model is used by one thread at a time
        self.voices = VoiceLibrary(opts.db, self._prepare, opts.voices_cache)
        self.metrics = Metrics(opts.max_batch)
        worker = ContinuousWorker if opts.continuous else Worker
        self.worker = worker(self.synth, self.lock, opts.max_batch, opts.batch_window_ms / 1000, opts.queue,
                             on_batch=self.metrics.batch.observe, memory_budget=opts.batch_memory_mb * 2**20)
        self.log = ServeLog(data_root_for(opts.db) / "serve-log.duckdb")

    def _prepare(self, speaker: str):
        from clonebench.instruments.references import prompt_from_store

        prompt = prompt_from_store(self.opts.db, speaker)
        with self.lock:
            return self.synth.reference(prompt.wav16, prompt.text, prompt.lang, sv=prompt.speaker_embedding,
                                        wav32=prompt.wav32)


def create_app(opts: ServeOptions) -> FastAPI:
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = await asyncio.to_thread(Service, opts)
        service.worker.start()
        state["service"] = service
        log.info("serving %d speakers from %s", len(service.voices.voices()), opts.db)
        yield
        service.worker.stop()
        service.log.close()

    app = FastAPI(title="clonebench voice service", version="1", lifespan=lifespan,
                  description="The voices enrolled with `clonebench vet`, synthesized by a GPT-SoVITS v2 model.")

    def service() -> Service:
        return state["service"]

    async def authorized(request: Request) -> None:
        if not opts.key_hashes:
            return
        auth = request.headers.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else ""
        digest = hash_key(key) if key else ""
        if not any(hmac.compare_digest(digest, h) for h in opts.key_hashes):
            raise HTTPError(401, "missing or wrong API key (send Authorization: Bearer KEY)",
                            {"WWW-Authenticate": "Bearer"})

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > opts.max_body_bytes:
            return JSONResponse({"error": f"request body over {opts.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, e: HTTPError):
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        if first.get("type") == "json_invalid":
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=422)
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where or 'body'}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(request: Request, e: StarletteHTTPException):
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.get("/healthz")
    async def healthz() -> dict:
        s = service()
        return {"status": "ok", "queue": s.worker.depth, **s.hashes}

    @app.get("/metrics", dependencies=[Depends(authorized)])
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        s = service()
        s.metrics.queue.set(s.worker.depth)
        return Response(generate_latest(s.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/speakers", dependencies=[Depends(authorized)])
    async def speakers() -> list[dict]:
        s = service()
        voices = await asyncio.to_thread(s.voices.voices)
        cached = set(s.voices.cached())
        return [{"speaker": v.speaker, "status": v.status, "lang": v.lang, "accepted_s": round(v.accepted_s, 2),
                 "encoder": v.encoder, "cached": v.speaker in cached} for v in voices]

    @app.post("/v1/tts", dependencies=[Depends(authorized)])
    async def tts(body: TTSRequest, request: Request):
        from clonebench.model.gpt import SamplingParams

        params = SamplingParams(top_k=body.top_k, top_p=body.top_p, temperature=body.temperature)
        return await _synthesize(request, "/v1/tts", body.text, body.speaker, body.lang, body.format, body.stream,
                                 params, body.seed, body.speed)

    @app.post("/v1/audio/speech", dependencies=[Depends(authorized)])
    async def speech(body: SpeechRequest, request: Request):
        from clonebench.model.gpt import SamplingParams

        return await _synthesize(request, "/v1/audio/speech", body.input, body.voice, "auto", body.response_format,
                                 False, SamplingParams(), 0, body.speed)

    async def _synthesize(request: Request, endpoint: str, text: str, speaker: str, lang: str, fmt: str,
                          stream: bool, params, seed: int, speed: float):
        s = service()
        rid = uuid.uuid4().hex[:16]
        received, t0 = datetime.now(), time.perf_counter()
        record = {"request_id": rid, "received_at": received, "endpoint": endpoint, "speaker": speaker, "lang": lang,
                  "chars": len(text), "sentences": 0, **s.hashes}
        try:
            job = await _admit(s, rid, text, speaker, lang, params, seed, speed)
        except Exception as e:
            status = e.status if isinstance(e, HTTPError) else _error_status(e)
            _log(s, record, status, error=str(e))
            if isinstance(e, HTTPError):
                raise
            raise HTTPError(status, str(e), {"Retry-After": "1"} if status == 503 else None) from None
        record["sentences"] = len(job.sentences)
        if stream:
            return StreamingResponse(_stream(s, request, job, fmt, record, t0), media_type=MEDIA[fmt],
                                     headers={"X-Sample-Rate": str(SAMPLE_RATE), "X-Request-Id": rid})
        try:
            waves = [await _wait(s, request, job, f, t0) for f in job.futures]
        except HTTPError as e:
            job.cancel()
            _log(s, record, e.status, error=e.message, job=job, t0=t0)
            raise
        audio = _join(waves)
        from clonebench.core.audio import encode

        data = await asyncio.to_thread(encode, audio, SAMPLE_RATE, fmt)
        _log(s, record, 200, job=job, t0=t0, audio_s=len(audio) / SAMPLE_RATE)
        return Response(data, media_type=MEDIA[fmt], headers={"X-Sample-Rate": str(SAMPLE_RATE), "X-Request-Id": rid})

    async def _admit(s: Service, rid: str, text: str, speaker: str, lang: str, params, seed: int, speed: float) -> Job:
        from clonebench.model.text.frontend import check_lang, phonemize, split_sentences

        if not text.strip():
            raise HTTPError(422, "empty text")
        if len(text) > opts.max_chars:
            raise HTTPError(413, f"text is {len(text)} characters; this server takes at most {opts.max_chars} "
                                 "per request: split it")
        lang = check_lang(lang)
        sentences = split_sentences(text, lang)
        for sentence in sentences:             # a text the front end cannot read fails here, not in the worker
            phonemize(sentence, lang)
        if not sentences:
            raise HTTPError(422, "no speakable text")
        prompt = await asyncio.to_thread(s.voices.prompt, speaker)
        job = Job(rid, speaker, lang, sentences, prompt, params, seed, speed)
        s.worker.submit(job)
        return job

    async def _wait(s: Service, request: Request, job: Job, future, t0: float):
        """One sentence's audio, cancelling the request when the client leaves or time runs out."""
        wrapped = asyncio.wrap_future(future)
        while True:
            left = opts.request_timeout_s - (time.perf_counter() - t0)
            if left <= 0:
                raise HTTPError(504, f"not synthesized within {opts.request_timeout_s:.0f} s")
            done, _ = await asyncio.wait({wrapped}, timeout=min(0.25, left))
            if done:
                try:
                    return wrapped.result()
                except Cancelled:
                    raise HTTPError(499, "cancelled") from None
                except Exception as e:
                    raise HTTPError(500, f"synthesis failed: {type(e).__name__}: {e}") from None
            if await request.is_disconnected():
                job.cancel()
                raise HTTPError(499, "client disconnected")

    async def _stream(s: Service, request: Request, job: Job, fmt: str, record: dict, t0: float):
        samples, status, error, ttfa = 0, 200, None, None
        try:
            if fmt == "wav":
                yield wav_header(SAMPLE_RATE)
            for k, future in enumerate(job.futures):
                wav = await _wait(s, request, job, future, t0)
                if k:
                    wav = np.concatenate([np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32), wav])
                ttfa = ttfa if ttfa is not None else time.perf_counter() - t0
                samples += len(wav)
                yield pcm16(wav)
        except HTTPError as e:
            status, error = e.status, e.message
        except BaseException:                   # the client went away mid-stream
            status, error = 499, "client disconnected"
            job.cancel()
            raise
        finally:
            _log(s, record, status, error=error, job=job, t0=t0, audio_s=samples / SAMPLE_RATE, ttfa=ttfa)

    def _log(s: Service, record: dict, status: int, error: str | None = None, job: Job | None = None,
             t0: float | None = None, audio_s: float | None = None, ttfa: float | None = None) -> None:
        from clonebench.store.servelog import SynthesisRecord

        now = time.perf_counter()
        queue_wait = synth_s = rtf = None
        if job is not None and job.started_at is not None:
            queue_wait = job.started_at - job.enqueued_at
            synth_s = now - job.started_at
            rtf = synth_s / audio_s if audio_s else None
        if status == 200 and ttfa is None and t0 is not None:
            ttfa = now - t0                     # not streamed: the first audio is the whole answer
        s.log.write(SynthesisRecord(**record, audio_s=audio_s, queue_wait_s=queue_wait, synth_s=synth_s, rtf=rtf,
                                    ttfa_s=ttfa, batch_size=max(job.batch_sizes) if job and job.batch_sizes else None,
                                    status=status, error=error))
        s.metrics.requests.labels(record["endpoint"], str(status)).inc()
        if status == 200 and t0 is not None:
            s.metrics.latency.labels(record["endpoint"]).observe(now - t0)
            if ttfa is not None:
                s.metrics.ttfa.observe(ttfa)
            if rtf is not None:
                s.metrics.rtf.observe(rtf)

    return app


def _join(waves: list[np.ndarray]) -> np.ndarray:
    gap = np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32)
    parts = []
    for k, w in enumerate(waves):
        parts += ([gap] if k else []) + [w]
    return np.concatenate(parts).astype(np.float32)


def run(opts: ServeOptions) -> None:
    """`clonebench serve`: load, then serve until interrupted."""
    import uvicorn

    uvicorn.run(create_app(opts), host=opts.host, port=opts.port, log_level="info", access_log=True)
