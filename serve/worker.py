"""The inference worker: one thread owns the model; sentences from every request queue to it.

It takes the first waiting sentence, gathers more for up to `window_s` (at most `max_batch`, at
most one sentence of each request, so a request's first sentence is never slowed down by its
own later ones: time to first audio stays one sentence's time, and no more than the batch's KV
cache at its token caps fits in `memory_budget` bytes), and says them in one batched GPT
pass per voice and sampling setting, then SoVITS
(`Synthesizer.say_sentences`). Each sentence carries its own seed, so its audio is the same
whether it ran alone or batched. A request's sentences resolve one by one, in any order; the
HTTP side streams them back in order as they resolve. A cancelled request (client gone, timed
out) has its sentences dropped when the worker reaches them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from clonebench.errors import UserError
from model.gpt import SamplingParams

log = logging.getLogger(__name__)


class QueueFull(UserError):
    """Too many sentences waiting (503)."""


class Cancelled(Exception):
    """The request was cancelled before this sentence ran."""


@dataclass
class Request:
    request_id: str
    speaker: str
    lang: str
    sentences: list[str]
    prompt: object                      # the voice's prepared model.synthesize.Reference
    params: SamplingParams
    seed: int = 0
    speed: float = 1.0
    enqueued_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None
    batch_sizes: list[int] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    futures: list[Future] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.futures = [Future() for _ in self.sentences]

    def cancel(self) -> None:
        self.cancelled.set()


class Worker:
    def __init__(self, synthesizer, lock: threading.Lock, max_batch: int, window_s: float, capacity: int,
                 on_batch=None, memory_budget: int | None = None):
        self.synth, self.lock = synthesizer, lock
        self.max_batch, self.window_s, self.capacity = max_batch, window_s, capacity
        self.memory_budget = memory_budget
        self.on_batch = on_batch or (lambda size: None)
        self.queue: queue.Queue[tuple[Request, int]] = queue.Queue()
        self._held: list[tuple[Request, int]] = []     # sentences waiting for their request's earlier ones
        self._pending = 0
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="clonebench-inference", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=30)

    @property
    def depth(self) -> int:
        return self._pending

    def submit(self, req: Request) -> None:
        with self._count_lock:
            if self._pending + len(req.sentences) > self.capacity:
                raise QueueFull(f"the queue is full ({self._pending} sentences waiting, at most {self.capacity}): retry shortly")
            self._pending += len(req.sentences)
        for i in range(len(req.sentences)):
            self.queue.put((req, i))

    def _get(self, timeout: float) -> tuple[Request, int]:
        if self._held:
            return self._held.pop(0)
        return self.queue.get(timeout=timeout) if timeout > 0 else self.queue.get_nowait()

    def _positions(self, item: tuple[Request, int]) -> int:
        try:
            return self.synth.positions(_job(*item))
        except Exception:  # unreadable text fails when the batch runs, with its own error
            return 0

    def _take(self, first: tuple[Request, int]) -> list[tuple[Request, int]]:
        batch, held, taken = [first], [], {id(first[0])}
        longest = self._positions(first) if self.memory_budget else 0
        deadline = time.perf_counter() + self.window_s
        while len(batch) < self.max_batch:
            try:
                item = self._get(deadline - time.perf_counter())
            except queue.Empty:
                break
            if id(item[0]) in taken:
                held.append(item)
                continue
            if self.memory_budget:
                # a batch pads every row to its longest: rows x longest positions must fit
                grown = max(longest, self._positions(item))
                if self.synth.gpt.kv_cache_bytes(len(batch) + 1, grown) > self.memory_budget:
                    held.append(item)
                    break
                longest = grown
            batch.append(item)
            taken.add(id(item[0]))
        self._held = held + self._held
        with self._count_lock:
            self._pending -= len(batch)
        return batch

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._get(0.2)
            except queue.Empty:
                continue
            batch = []
            for req, i in self._take(first):
                if req.cancelled.is_set():
                    req.futures[i].set_exception(Cancelled(req.request_id))
                else:
                    batch.append((req, i))
            if not batch:
                continue
            jobs = [_job(req, i) for req, i in batch]
            now = time.perf_counter()
            for req, _ in batch:
                req.started_at = req.started_at or now
                req.batch_sizes.append(len(batch))
            self.on_batch(len(batch))
            def done(k: int, wav) -> None:   # each sentence goes back as soon as it is ready
                req, i = batch[k]
                req.futures[i].set_result(wav)

            try:
                with self.lock:
                    self.synth.say_sentences(jobs, on_done=done)
            except Exception as e:  # a failure fails this batch's unfinished sentences, never the worker
                log.exception("batch of %d sentences failed", len(batch))
                for req, i in batch:
                    if not req.futures[i].done():
                        req.futures[i].set_exception(e)


def _job(req: Request, i: int):
    """A request's i-th sentence as the synthesizer's unit of work."""
    from model.synthesize import SentenceJob

    return SentenceJob(req.sentences[i], req.lang, req.prompt, req.params, req.seed + i, req.speed)
