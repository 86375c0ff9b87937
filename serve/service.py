"""What a running `clonebench serve` does, apart from HTTP: the `Service` (model, voices, worker,
request log, metrics) and the request it serves, a `SpeechJob`.

A request is admitted once: its text is checked, cut into sentences under the per-sentence cap
and read by the model's front end (`Synthesizer.prepare`: phones, BERT features, token cap),
its voice is looked up, and its sentences go to the worker as `Utterance`s that nothing
phonemizes again. A text the front end cannot read fails at admission, with its status, never
in the worker.

Swapping the model (`swap`, api_v2's /set_*_weights) is atomic: the new files load beside the
old model, then new requests wait while those in flight finish on the old one, the model is
replaced, and the prepared voices are dropped. No request is dropped, and none hears two models.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from clonebench.core.errors import UserError
from clonebench.model.decode import SamplingParams
from clonebench.model.synthesize import SENTENCE_GAP_S, Utterance
from clonebench.model.text.frontend import TextTooLong

from .encoding import AudioStream, whole
from .metrics import Metrics
from .options import ServeOptions
from .protocol import MAX_SEED, SAMPLE_RATE, HTTPError
from .voices import SpeakerNotReady, UnknownSpeaker, VoiceLibrary
from .worker import Cancelled, ContinuousWorker, QueueFull, Ticket, Worker

log = logging.getLogger("clonebench.serve")

STATUS_OF = [(UnknownSpeaker, 404), (SpeakerNotReady, 409), (QueueFull, 503), (TextTooLong, 413), (UserError, 422)]


def status_of(e: Exception) -> int:
    if isinstance(e, HTTPError):
        return e.status
    return next((code for kind, code in STATUS_OF if isinstance(e, kind)), 500)


def resolve_seed(seed: int) -> int:
    """-1 means a random seed; the one used is sent back (X-Seed) so a good take can be made again."""
    return secrets.randbelow(2 ** 32) if seed == -1 else seed


@dataclass(frozen=True)
class FilePrompt:
    """A reference a request names by file (api_v2's `ref_audio_path` under --ref-dir)."""
    path: Path
    text: str
    lang: str


@dataclass(frozen=True)
class SpeechJob:
    """One request to speak, whichever API it came by, made once from its HTTP body."""
    endpoint: str
    request_id: str
    received_at: datetime
    text: str
    speaker: str | None                 # None: `prompt` names the reference
    lang: str = "auto"
    format: str = "wav"
    stream: bool = False
    params: SamplingParams = SamplingParams()
    seed: int = 0                       # resolved: never -1
    speed: float = 1.0
    rate: int = SAMPLE_RATE             # the answer's sample rate
    events: bool = False                # OpenAI's stream_format "sse"
    prompt: FilePrompt | None = None
    t0: float = field(default_factory=time.perf_counter)     # latencies count from here


class Service:
    """Everything a running server holds: the model, the voices, the worker, the log, the metrics."""

    def __init__(self, opts: ServeOptions):
        from clonebench.core.config import data_root_for
        from clonebench.store.servelog import ServeLog

        self.opts = opts
        self.lock = threading.Lock()        # the model is used by one thread at a time
        self._use(*self._load(opts.model.gpt, opts.model.sovits))
        self.voices = VoiceLibrary(opts.db, self._prepare_voice, opts.voices_cache)
        self.metrics = Metrics(opts.max_batch)
        worker = ContinuousWorker if opts.continuous else Worker
        self.worker = worker(self.synth, self.lock, opts.max_batch, opts.batch_window_ms / 1000, opts.queue,
                             on_batch=self.metrics.batch.observe, memory_budget=opts.batch_memory_mb * 2**20)
        self.log = ServeLog(data_root_for(opts.db) / "serve-log.duckdb")
        self._in_flight, self._paused = 0, False
        self._flight = threading.Condition()
        self._swapping = threading.Lock()
        self._file_prompts: dict[tuple, object] = {}
        self._file_lock = threading.Lock()
        self._logged: set[str] = set()      # request ids with a row, until the gate has seen them (`take_logged`)

    def _load(self, gpt: Path, sovits: Path) -> tuple:
        """A model from these files, with what the server says of it (checked, hashed; nothing changes yet)."""
        from clonebench.instruments.registry import sha256_file
        from clonebench.model.synthesize import Synthesizer

        synth = Synthesizer(self.opts.model.with_files(gpt, sovits), keep_content=False)  # voices prepared once each
        hashes = {"gpt_sha256": sha256_file(gpt), "sovits_sha256": sha256_file(sovits)}
        # the GPT-SoVITS version of the SoVITS file, and (v2Pro) where each voice's timbre vector comes from
        info = {"model_version": synth.version} | ({"timbre": self.opts.model.timbre} if synth.sovits.config.is_pro else {})
        return synth, (Path(gpt), Path(sovits)), hashes, info

    def _use(self, synth, files: tuple[Path, Path], hashes: dict, info: dict) -> None:
        self.synth, self.files, self.hashes, self.model_info = synth, files, hashes, info

    def _prepare_voice(self, speaker: str):
        from clonebench.instruments.references import prompt_from_store

        prompt = prompt_from_store(self.opts.db, speaker)
        with self.lock:
            return self.synth.reference(prompt)

    def start(self) -> None:
        self.worker.start()
        voices = self.voices.voices()
        servable = [v for v in voices if v.servable]
        log.info("serving %d of %d speakers from %s with a GPT-SoVITS %s model", len(servable), len(voices),
                 self.opts.db, self.synth.version)
        for v in voices:
            if not v.servable:
                log.info("not served: %s", v.why_not)

    def stop(self) -> None:
        self.worker.stop()
        self.log.close()

    # -- what the routes ask --------------------------------------------------------------------
    def health(self) -> dict:
        voices = self.voices.refresh().values()
        servable = sum(v.servable for v in voices)
        return {"status": "ok", "queue": self.worker.depth, "speakers": len(voices), "servable": servable,
                **self.model_info, **self.hashes}

    def metrics_text(self) -> bytes:
        return self.metrics.exposition(self.worker.depth)

    def speakers(self) -> list[dict]:
        """Every speaker of the store, whether it can be served and why not (reads the store:
        call it off the event loop)."""
        voices = self.voices.voices()
        cached = set(self.voices.cached())
        return [{"speaker": v.speaker, "status": v.status, "servable": v.servable, "why_not": v.why_not,
                 "lang": v.lang, "prompt": v.prompt, "prompt_lang": v.prompt_lang, "accepted_s": round(v.accepted_s, 2),
                 "encoder": v.encoder, "cached": v.speaker in cached, **self.model_info} for v in voices]

    def swap(self, gpt: Path | None = None, sovits: Path | None = None) -> dict:
        """Load another GPT and/or SoVITS file and serve with it from now on (blocking)."""
        with self._swapping:     # one swap at a time
            return self._swap(gpt, sovits)

    def _swap(self, gpt: Path | None, sovits: Path | None) -> dict:
        loaded = self._load(gpt or self.files[0], sovits or self.files[1])   # a bad file fails here, harmlessly
        with self._flight:       # new requests wait; those in flight finish on the old model
            self._paused = True
            self._flight.wait_for(lambda: not self._in_flight)
        try:
            with self.lock:
                self._use(*loaded)
                self.worker.synth = self.synth
            self.voices.clear()
            with self._file_lock:
                self._file_prompts.clear()
        finally:
            with self._flight:
                self._paused = False
                self._flight.notify_all()
        log.info("now serving GPT %s and SoVITS %s", *self.files)
        return {"message": "success", **self.model_info, **self.hashes}

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
            audio = self._stream(job, ticket, disconnected)
            return self._events(job, audio) if job.events else audio
        try:
            waves = [await self._wait(job, ticket, future, disconnected) for future in ticket.futures]
        except BaseException as e:            # HTTPError, or cancelled with the client gone
            ticket.cancel()
            status, message = (e.status, e.message) if isinstance(e, HTTPError) else (499, "client disconnected")
            self._log(job, status, error=message, ticket=ticket)
            raise
        wav = _join(waves)
        data = await asyncio.to_thread(whole, wav, job.format, job.rate)
        self._log(job, 200, ticket=ticket, audio_s=len(wav) / SAMPLE_RATE)
        return data

    def log_refusal(self, request_id: str, received_at: datetime, endpoint: str, status: int, error: str | None) -> None:
        """A synthesis request with no row of its own: refused before it reached `synthesize` (by the
        gate or by FastAPI's validation), or a stream whose client left before its first byte."""
        self._log(SpeechJob(endpoint, request_id, received_at, "", None), status, error=error, refused=True)

    # -- admission, waiting, streaming, logging ---------------------------------------------------
    def _admit(self, job: SpeechJob) -> Ticket:
        """Check, prepare and queue `job`'s sentences (blocking: the front end and the voice look-up)."""
        if not job.text.strip():
            raise HTTPError(422, "empty text")
        if len(job.text) > self.opts.max_input_chars:
            raise HTTPError(413, f"text is {len(job.text)} characters; this server takes at most "
                                 f"{self.opts.max_input_chars} per request: split it")
        self._enter(job)
        try:
            # the front end runs here, outside the model lock: its BERT is a CPU model the worker never uses
            sentences = self.synth.prepare(job.text, job.lang, max_chars=self.opts.max_chars)
            ref = self._file_prompt(job.prompt) if job.prompt else self.voices.prompt(job.speaker)
            ticket = Ticket(job.request_id, tuple(Utterance(s, ref, job.params, (job.seed + i) % (MAX_SEED + 1), job.speed)
                                                  for i, s in enumerate(sentences)))
            self.worker.submit(ticket)
        except BaseException:
            self._leave()
            raise
        # in flight until the worker has finished (or dropped) its last sentence, whatever the client does
        remaining = [len(ticket.futures)]

        def done(_) -> None:
            with self._flight:
                remaining[0] -= 1
                last = not remaining[0]
            if last:
                self._leave()
        for future in ticket.futures:
            future.add_done_callback(done)
        return ticket

    def _enter(self, job: SpeechJob) -> None:
        """Count the request in flight; while a model swap waits for those in flight, wait for it."""
        with self._flight:
            left = self.opts.request_timeout_s - (time.perf_counter() - job.t0)
            if not self._flight.wait_for(lambda: not self._paused, timeout=max(left, 0)):
                raise HTTPError(504, "the model is being swapped; not admitted in time")
            self._in_flight += 1

    def _leave(self) -> None:
        with self._flight:
            self._in_flight -= 1
            self._flight.notify_all()

    def _file_prompt(self, prompt: FilePrompt):
        """An ad-hoc reference's prepared prompt, kept while the file is unchanged (at most `voices_cache`)."""
        from clonebench.instruments.references import prompt_from_file

        key = (prompt, prompt.path.stat().st_mtime_ns)
        with self._file_lock:
            if key in self._file_prompts:
                return self._file_prompts[key]
        choice = prompt_from_file(prompt.path, prompt.text, prompt.lang)
        with self.lock:
            prepared = self.synth.reference(choice)
        with self._file_lock:
            while len(self._file_prompts) >= self.opts.voices_cache:
                self._file_prompts.pop(next(iter(self._file_prompts)))
            self._file_prompts[key] = prepared
        return prepared

    async def _wait(self, job: SpeechJob, ticket: Ticket, future, disconnected) -> np.ndarray:
        """One sentence's audio, cancelling the request when the client leaves or time runs out."""
        wrapped = asyncio.wrap_future(future)
        wrapped.add_done_callback(_observed)
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
        """The answer's bytes as each sentence is ready. A failure after the first byte cannot
        change the status any more: it is logged and raised, so the connection is cut and the
        client sees an incomplete answer, never a short one that looks whole."""
        samples, status, error, ttfa = 0, 200, None, None
        encoder = AudioStream(job.format, job.rate)
        try:
            head = encoder.start()
            if head:
                yield head
            for k, future in enumerate(ticket.futures):
                wav = await self._wait(job, ticket, future, disconnected)
                if k:
                    wav = np.concatenate([_gap(), wav])
                ttfa = ttfa if ttfa is not None else time.perf_counter() - job.t0
                samples += len(wav)
                chunk = await asyncio.to_thread(encoder.write, wav)
                if chunk:
                    yield chunk
            tail = encoder.finish()
            if tail:
                yield tail
        except HTTPError as e:
            status, error = e.status, e.message
            ticket.cancel()
            raise
        except BaseException:                   # the client went away mid-stream
            status, error = 499, "client disconnected"
            ticket.cancel()
            raise
        finally:
            encoder.close()
            self._log(job, status, error=error, ticket=ticket, audio_s=samples / SAMPLE_RATE, ttfa=ttfa)

    async def _events(self, job: SpeechJob, audio: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """OpenAI's `stream_format: "sse"`: each piece of audio as a `speech.audio.delta` event
        (base64), then `speech.audio.done`; a failure is an `error` event."""
        def event(doc: dict) -> bytes:
            return b"data: " + json.dumps(doc).encode() + b"\n\n"

        try:
            async for chunk in audio:
                yield event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
        except HTTPError as e:
            yield event({"type": "error", "error": {"message": e.message, "code": str(e.status)}})
            return
        yield event({"type": "speech.audio.done",
                     "usage": {"input_tokens": len(job.text), "output_tokens": 0, "total_tokens": len(job.text)}})

    def _log(self, job: SpeechJob, status: int, error: str | None = None, ticket: Ticket | None = None,
             audio_s: float | None = None, ttfa: float | None = None, refused: bool = False) -> None:
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
            request_id=job.request_id, received_at=job.received_at, endpoint=job.endpoint,
            speaker=job.speaker if job.speaker is not None else (str(job.prompt.path) if job.prompt else None),
            lang=None if refused else job.lang, chars=len(job.text), sentences=len(ticket.sentences) if ticket else 0,
            audio_s=audio_s, queue_wait_s=queue_wait, synth_s=synth_s, rtf=rtf, ttfa_s=ttfa,
            batch_size=max(ticket.batch_sizes) if ticket and ticket.batch_sizes else None, status=status,
            error=error, **self.hashes, streamed=None if refused else job.stream, format=None if refused else job.format,
            seed=None if refused else job.seed, latency_s=now - job.t0))
        self.metrics.served(job.endpoint, status, now - job.t0, ttfa, rtf)
        if not refused:
            with self._flight:
                self._logged.add(job.request_id)

    def take_logged(self, request_id: str) -> bool:
        """Whether the request has its row (the gate asks once, when the answer is over, and logs it if not)."""
        with self._flight:
            if request_id in self._logged:
                self._logged.discard(request_id)
                return True
            return False


def _observed(future: asyncio.Future) -> None:
    """A sentence's future is looked at even when nobody waits for it any more (the client left),
    so asyncio never logs 'Future exception was never retrieved'."""
    if not future.cancelled():
        future.exception()


def _gap() -> np.ndarray:
    return np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32)


def _join(waves: list[np.ndarray]) -> np.ndarray:
    parts = []
    for k, w in enumerate(waves):
        parts += ([_gap()] if k else []) + [w]
    return np.concatenate(parts).astype(np.float32)

