"""The inference worker: one thread owns the model; sentences from every request queue to it.

It takes the first waiting sentence, gathers more for up to `window_s` (at most `max_batch`, at
most one sentence of each request, so a request's first sentence is never slowed down by its
own later ones: time to first audio stays one sentence's time, and no more than the batch's KV
cache at its token caps fits in `memory_budget` bytes), and says them in one batched GPT
pass per voice and sampling setting, then SoVITS
(`Synthesizer.say_sentences`). Each sentence carries its own seed, so its audio is the same
whether it ran alone or batched. A request's sentences resolve one by one, in any order; the
HTTP side streams them back in order as they resolve. A cancelled request (client gone, timed
out) has its sentences dropped when the worker reaches them. A request comes as a `Ticket` of
`Utterance`s its admission prepared: the worker never reads text.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from clonebench.core.errors import UserError
from clonebench.model.synthesize import Utterance

log = logging.getLogger(__name__)


# A continuous decoder's row holds at most this many positions (reference phones and tokens, the
# sentence's phones, its token cap): a 150-character sentence with a 6 s reference needs ~700.
MAX_ROW_POSITIONS = 1024


class QueueFull(UserError):
    """Too many sentences waiting (503)."""


class Cancelled(Exception):
    """The request was cancelled before this sentence ran."""


@dataclass
class Ticket:
    """A request in the worker: its prepared sentences, one future for each (resolved in any
    order), its cancel flag, and what the request log reads of its progress."""
    request_id: str
    sentences: tuple[Utterance, ...]
    enqueued_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None     # when its first sentence began
    batch_sizes: list[int] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    futures: tuple[Future, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.futures = tuple(Future() for _ in self.sentences)

    def cancel(self) -> None:
        self.cancelled.set()


class Worker:
    def __init__(self, synthesizer, lock: threading.Lock, max_batch: int, window_s: float, capacity: int,
                 on_batch=None, memory_budget: int | None = None):
        self.synth, self.lock = synthesizer, lock
        self.max_batch, self.window_s, self.capacity = max_batch, window_s, capacity
        self.memory_budget = memory_budget
        self.on_batch = on_batch or (lambda size: None)
        self.queue: queue.Queue[tuple[Ticket, int]] = queue.Queue()
        self._held: list[tuple[Ticket, int]] = []     # sentences waiting for their request's earlier ones
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

    def submit(self, req: Ticket) -> None:
        with self._count_lock:
            if self._pending + len(req.sentences) > self.capacity:
                raise QueueFull(f"the queue is full ({self._pending} sentences waiting, at most {self.capacity}): retry shortly")
            self._pending += len(req.sentences)
        for i in range(len(req.sentences)):
            self.queue.put((req, i))

    def _get(self, timeout: float) -> tuple[Ticket, int]:
        if self._held:
            return self._held.pop(0)
        return self.queue.get(timeout=timeout) if timeout > 0 else self.queue.get_nowait()

    def _positions(self, item: tuple[Ticket, int]) -> int:
        req, i = item
        return req.sentences[i].positions

    def _take(self, first: tuple[Ticket, int]) -> list[tuple[Ticket, int]]:
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
            utterances = [req.sentences[i] for req, i in batch]
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
                    self.synth.say_sentences(utterances, on_done=done)
            except Exception as e:  # a failure fails this batch's unfinished sentences, never the worker
                log.exception("batch of %d sentences failed", len(batch))
                for req, i in batch:
                    if not req.futures[i].done():
                        req.futures[i].set_exception(e)


class ContinuousWorker(Worker):
    """Continuous batching (`model.decode.continuous`): a sentence joins the running decode as soon as
    a row is free, instead of waiting for the batch before it to finish, and leaves when it
    stops; its audio is made and sent at once. A request's sentences still decode one at a
    time, so its first is never slowed by its own later ones. `max_batch` rows share the KV
    cache that `memory_budget` allows; a sentence too long for a row is said alone. Each
    sentence's audio is the same as in `Worker` (its tokens are those it gets alone)."""

    def _loop(self) -> None:
        from clonebench.model.decode import ContinuousDecoder

        rows = self.max_batch
        # a row's room: what the budget leaves each row, but no more than a sentence can need
        capacity = min(MAX_ROW_POSITIONS, (self.memory_budget or 2 ** 30) // self.synth.gpt.kv_cache_bytes(rows, 1))
        decoders: dict = {}                                     # SamplingParams -> ContinuousDecoder
        running: dict[int, tuple[Ticket, int]] = {}             # row key -> request, sentence
        keys = iter(range(2 ** 62))
        while not self._stop.is_set():
            self._admit(decoders, running, keys,
                        lambda params: ContinuousDecoder(self.synth.gpt, rows, capacity, params))
            for params, decoder in list(decoders.items()):
                if not decoder.busy:
                    continue
                try:
                    with self.lock:
                        finished = decoder.step()
                        for key, tokens in finished:
                            req, i = running.pop(key)
                            req.futures[i].set_result(self.synth.vocode(req.sentences[i], tokens))
                except Exception as e:  # fail this decoder's sentences, never the worker
                    log.exception("continuous decode failed")
                    for key in list(running):
                        req, i = running[key]
                        if req.sentences[i].params == params:
                            del running[key]
                            if not req.futures[i].done():
                                req.futures[i].set_exception(e)
                    del decoders[params]

    def _admit(self, decoders: dict, running: dict, keys, new_decoder) -> None:
        """Every waiting sentence with a free row and no earlier sentence of its request decoding
        joins now; the rest wait. With nothing decoding, waits a moment for work."""
        busy_requests = {id(req) for req, _ in running.values()}
        held = []
        while True:
            try:
                item = self._get(0.0 if running or held else 0.2)
            except queue.Empty:
                break
            req, i = item
            params = req.sentences[i].params
            decoder = decoders.get(params)
            # one decoder's rows at a time fit the memory budget: other sampling settings wait
            other_busy = decoder is None and any(d.busy for d in decoders.values())
            if id(req) in busy_requests or other_busy or (decoder is not None and not decoder.free_rows):
                held.append(item)
                continue
            with self._count_lock:
                self._pending -= 1
            if req.cancelled.is_set():
                req.futures[i].set_exception(Cancelled(req.request_id))
                continue
            if decoder is None:
                decoders.clear()              # idle: its rows' memory goes back
                decoder = decoders[params] = new_decoder(params)
            key = next(keys)
            try:
                with self.lock:
                    joined = self.synth.join(decoder, key, req.sentences[i])
                    if not joined:  # longer than a row holds: said on its own
                        req.futures[i].set_result(self.synth.say_sentences([req.sentences[i]])[0])
            except Exception as e:
                req.futures[i].set_exception(e)
                continue
            req.started_at = req.started_at or time.perf_counter()
            occupied = len(decoder.occupant) - decoder.free_rows
            req.batch_sizes.append(max(occupied, 1))
            if joined:
                running[key] = (req, i)
                busy_requests.add(id(req))
                self.on_batch(occupied)
        self._held = held + self._held
