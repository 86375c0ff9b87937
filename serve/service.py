"""What a running `clonebench serve` does, apart from HTTP: the `Service` (model, voices, worker,
request log, metrics) and the request it serves, a `SpeechJob`.

A request is admitted once: its text is checked, split and read by the model's front end
(`Synthesizer.prepare`: phones, BERT features, token cap), its voice is looked up, and its
sentences go to the worker as `Utterance`s that nothing phonemizes again. A text the front end
cannot read fails at admission, with its status, never in the worker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from clonebench.core.audio import pcm16
from clonebench.core.errors import UserError
from clonebench.model.decode import SamplingParams
from clonebench.model.synthesize import SENTENCE_GAP_S, Utterance

from .metrics import Metrics
from .options import ServeOptions
from .protocol import SAMPLE_RATE, HTTPError, SpeechRequest, TTSRequest, wav_header
from .voices import SpeakerNotReady, UnknownSpeaker, VoiceLibrary
from .worker import Cancelled, ContinuousWorker, QueueFull, Ticket, Worker

log = logging.getLogger("clonebench.serve")

STATUS_OF = [(UnknownSpeaker, 404), (SpeakerNotReady, 409), (QueueFull, 503), (UserError, 422)]


def status_of(e: Exception) -> int:
    if isinstance(e, HTTPError):
        return e.status
    return next((code for kind, code in STATUS_OF if isinstance(e, kind)), 500)


def _request_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class SpeechJob:
    """One request to speak, whichever endpoint it came by, made once from its HTTP body."""
    endpoint: str
    text: str
    speaker: str
    lang: str = "auto"
    format: str = "wav"
    stream: bool = False
    params: SamplingParams = SamplingParams()
    seed: int = 0
    speed: float = 1.0
    request_id: str = field(default_factory=_request_id)
    received_at: datetime = field(default_factory=datetime.now)
    t0: float = field(default_factory=time.perf_counter)     # latencies count from here

    @classmethod
    def from_tts(cls, body: TTSRequest) -> SpeechJob:
        params = SamplingParams(top_k=body.top_k, top_p=body.top_p, temperature=body.temperature)
        return cls("/v1/tts", body.text, body.speaker, body.lang, body.format, body.stream, params, body.seed,
                   body.speed)

    @classmethod
    def from_speech(cls, body: SpeechRequest) -> SpeechJob:
        return cls("/v1/audio/speech", body.input, body.voice, "auto", body.response_format, speed=body.speed)


class Service:
    """Everything a running server holds: the model, the voices, the worker, the log, the metrics."""

    def __init__(self, opts: ServeOptions):
        from clonebench.core.config import data_root_for
        from clonebench.instruments.registry import sha256_file
        from clonebench.model.synthesize import Synthesizer
        from clonebench.store.servelog import ServeLog

        self.opts = opts
        self.synth = Synthesizer(opts.model, keep_content=False)   # voices are prepared once each (LRU-cached)
        self.hashes = {"gpt_sha256": sha256_file(opts.model.gpt), "sovits_sha256": sha256_file(opts.model.sovits)}
        # the GPT-SoVITS version of the SoVITS file, and (v2Pro) where each voice's timbre vector comes from
        self.model_info = {"model_version": self.synth.version}
        if self.synth.sovits.config.is_pro:
            self.model_info["timbre"] = opts.model.timbre
        self.lock = threading.Lock()        # the model is used by one thread at a time
        self.voices = VoiceLibrary(opts.db, self._prepare_voice, opts.voices_cache)
        self.metrics = Metrics(opts.max_batch)
        worker = ContinuousWorker if opts.continuous else Worker
        self.worker = worker(self.synth, self.lock, opts.max_batch, opts.batch_window_ms / 1000, opts.queue,
                             on_batch=self.metrics.batch.observe, memory_budget=opts.batch_memory_mb * 2**20)
        self.log = ServeLog(data_root_for(opts.db) / "serve-log.duckdb")

    def _prepare_voice(self, speaker: str):
        from clonebench.instruments.references import prompt_from_store

        prompt = prompt_from_store(self.opts.db, speaker)
        with self.lock:
            return self.synth.reference(prompt)

    def start(self) -> None:
        self.worker.start()
        log.info("serving %d speakers from %s with a GPT-SoVITS %s model", len(self.voices.voices()), self.opts.db,
                 self.synth.version)

    def stop(self) -> None:
        self.worker.stop()
        self.log.close()

    # -- what the routes ask --------------------------------------------------------------------
    def health(self) -> dict:
        return {"status": "ok", "queue": self.worker.depth, **self.model_info, **self.hashes}

    def metrics_text(self) -> bytes:
        return self.metrics.exposition(self.worker.depth)

    def speakers(self) -> list[dict]:
        """The enrolled speakers (reads the store: call it off the event loop)."""
        voices = self.voices.voices()
        cached = set(self.voices.cached())
        return [{"speaker": v.speaker, "status": v.status, "lang": v.lang, "accepted_s": round(v.accepted_s, 2),
                 "encoder": v.encoder, "cached": v.speaker in cached, **self.model_info} for v in voices]

    async def synthesize(self, job: SpeechJob, disconnected: Callable[[], Awaitable[bool]]
                         ) -> bytes | AsyncIterator[bytes]:
        """`job`'s audio in its format, or with `job.stream` its audio as each sentence is ready.
        Raises HTTPError; every outcome, served or refused, is a row of the request log."""
        try:
            ticket = await asyncio.to_thread(self._admit, job)
        except Exception as e:
            status = status_of(e)
            self._log(job, status, error=str(e))
            if isinstance(e, HTTPError):
                raise
            raise HTTPError(status, str(e), {"Retry-After": "1"} if status == 503 else None) from None
        if job.stream:
            return self._stream(job, ticket, disconnected)
        try:
            waves = [await self._wait(job, ticket, future, disconnected) for future in ticket.futures]
        except HTTPError as e:
            ticket.cancel()
            self._log(job, e.status, error=e.message, ticket=ticket)
            raise
        from clonebench.core.audio import encode

        audio = _join(waves)
        data = await asyncio.to_thread(encode, audio, SAMPLE_RATE, job.format)
        self._log(job, 200, ticket=ticket, audio_s=len(audio) / SAMPLE_RATE)
        return data

    # -- admission, waiting, streaming, logging ---------------------------------------------------
    def _admit(self, job: SpeechJob) -> Ticket:
        """Check, prepare and queue `job`'s sentences (blocking: the front end and the voice look-up)."""
        if not job.text.strip():
            raise HTTPError(422, "empty text")
        if len(job.text) > self.opts.max_chars:
            raise HTTPError(413, f"text is {len(job.text)} characters; this server takes at most "
                                 f"{self.opts.max_chars} per request: split it")
        # the front end runs here, outside the model lock: its BERT is a CPU model the worker never uses
        sentences = self.synth.prepare(job.text, job.lang)
        ref = self.voices.prompt(job.speaker)
        ticket = Ticket(job.request_id, tuple(Utterance(s, ref, job.params, job.seed + i, job.speed)
                                              for i, s in enumerate(sentences)))
        self.worker.submit(ticket)
        return ticket

    async def _wait(self, job: SpeechJob, ticket: Ticket, future, disconnected) -> np.ndarray:
        """One sentence's audio, cancelling the request when the client leaves or time runs out."""
        wrapped = asyncio.wrap_future(future)
        timeout = self.opts.request_timeout_s
        while True:
            left = timeout - (time.perf_counter() - job.t0)
            if left <= 0:
                raise HTTPError(504, f"not synthesized within {timeout:.0f} s")
            done, _ = await asyncio.wait({wrapped}, timeout=min(0.25, left))
            if done:
                try:
                    return wrapped.result()
                except Cancelled:
                    raise HTTPError(499, "cancelled") from None
                except Exception as e:
                    raise HTTPError(500, f"synthesis failed: {type(e).__name__}: {e}") from None
            if await disconnected():
                ticket.cancel()
                raise HTTPError(499, "client disconnected")

    async def _stream(self, job: SpeechJob, ticket: Ticket, disconnected) -> AsyncIterator[bytes]:
        samples, status, error, ttfa = 0, 200, None, None
        try:
            if job.format == "wav":
                yield wav_header(SAMPLE_RATE)
            for k, future in enumerate(ticket.futures):
                wav = await self._wait(job, ticket, future, disconnected)
                if k:
                    wav = np.concatenate([_gap(), wav])
                ttfa = ttfa if ttfa is not None else time.perf_counter() - job.t0
                samples += len(wav)
                yield pcm16(wav)
        except HTTPError as e:
            status, error = e.status, e.message
        except BaseException:                   # the client went away mid-stream
            status, error = 499, "client disconnected"
            ticket.cancel()
            raise
        finally:
            self._log(job, status, error=error, ticket=ticket, audio_s=samples / SAMPLE_RATE, ttfa=ttfa)

    def _log(self, job: SpeechJob, status: int, error: str | None = None, ticket: Ticket | None = None,
             audio_s: float | None = None, ttfa: float | None = None) -> None:
        from clonebench.store.servelog import SynthesisRecord

        now = time.perf_counter()
        queue_wait = synth_s = rtf = None
        if ticket is not None and ticket.started_at is not None:
            queue_wait = ticket.started_at - ticket.enqueued_at
            synth_s = now - ticket.started_at
            rtf = synth_s / audio_s if audio_s else None
        if status == 200 and ttfa is None:
            ttfa = now - job.t0                 # not streamed: the first audio is the whole answer
        self.log.write(SynthesisRecord(
            request_id=job.request_id, received_at=job.received_at, endpoint=job.endpoint, speaker=job.speaker,
            lang=job.lang, chars=len(job.text), sentences=len(ticket.sentences) if ticket else 0, audio_s=audio_s,
            queue_wait_s=queue_wait, synth_s=synth_s, rtf=rtf, ttfa_s=ttfa,
            batch_size=max(ticket.batch_sizes) if ticket and ticket.batch_sizes else None, status=status,
            error=error, **self.hashes))
        self.metrics.served(job.endpoint, status, now - job.t0, ttfa, rtf)


def _gap() -> np.ndarray:
    return np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32)


def _join(waves: list[np.ndarray]) -> np.ndarray:
    parts = []
    for k, w in enumerate(waves):
        parts += ([_gap()] if k else []) + [w]
    return np.concatenate(parts).astype(np.float32)
