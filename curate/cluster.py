"""`vet --ray`: the same vetting on a Ray cluster. Workers measure; this process alone writes.

- Ray tasks hash each file, then decode and slice the new ones, writing the clip files into the
  store's data folder (`<store folder>/clips/<speaker>/`). Every node must see that folder at the
  same path: a shared filesystem (NFS, a mounted bucket) holding the store.
- `ClipWorker` actors, one per worker, each load every per-clip model once (the signal screens
  with DNSMOS, YAMNet and the scene classifier; the speaker encoder; the overlap detector;
  Whisper) and measure clips with `screen.measure_*`. One actor type holding all the models keeps
  every CPU busy without balancing a pool per model against the others. A worker asks Ray for as
  many CPUs as it runs threads, and the run is refused when the workers asked for do not fit the
  cluster's nodes (Ray would wait for them for ever).
- This process commits every result with the `commit_*` functions a one-process run uses, in the
  store's usual idempotent transactions, and judges a speaker (`finish_speaker`) once all of its
  clips are in. A speaker's clips are screened once all its files are ingested; ASR batches are
  then formed exactly as one process forms them (packing decides the words) and each batch is
  committed after its clips' signal figures (the speaking rate needs their speech time).
- Backpressure: each call goes to the least busy worker, at most IN_FLIGHT outstanding a worker,
  and files are handed to tasks as room frees (clip calls first), so a large manifest's audio
  never sits in memory and screening one speaker overlaps ingesting the next.

Faults: a worker that dies has its call retried on a restarted actor (RETRIES times), and
nothing reaches the store before the driver holds a whole result, so nothing is written twice.
A killed driver loses what was in flight; the store knows what is done, and a re-run resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from clonebench.core.errors import UserError
from clonebench.core.progress import RunCounts, run_progress
from clonebench.instruments.registry import sha256_file
from clonebench.store import Clip, GivenText, Store

from . import screen
from .ingest import (IngestOptions, commit_recording, error_message, nothing_to_vet, owner_error,
                     slice_recording)
from .results import SourceError, VetResult
from .rules import RuleSet

if TYPE_CHECKING:
    from .vet import SpeakerJob, VetOptions

log = logging.getLogger(__name__)

IN_FLIGHT = 2        # outstanding calls per worker: one running, one waiting in its queue
RETRIES = 3          # a call on a worker that died runs again this many times (a clip that kills
                     # its worker every time stops the run rather than restarting it for ever)
CONNECT_TIMEOUT_S = 10.0
STARTUP_TIMEOUT_S = 900.0   # every worker's models loaded
STAGES = ("ingest", "signal", "embed", "overlap", "asr")


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None     # None: start Ray here; "auto", "HOST:PORT" or "ray://HOST:10001": join one
    workers: int | None = None     # model actors; None: as many as the cluster's nodes hold (threads CPUs each)

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise UserError("--ray-workers must be at least 1")


@dataclass(frozen=True)
class ClusterRun:
    """A `--ray` run's summary (`--json` under "ray")."""
    address: str
    workers: int
    files: int
    clips: int
    audio_h: float
    wall_s: float
    startup_s: float               # joining Ray and every worker's models loaded
    measured: dict[str, int]       # calls per stage this run (a resumed run makes only what was left)
    worker_s: dict[str, float]     # seconds of work per stage, summed over the workers and tasks
    driver_s: dict[str, float]     # seconds this process spent committing and judging

    def to_json(self) -> dict:
        return {"address": self.address, "workers": self.workers, "files": self.files, "clips": self.clips,
                "audio_h": round(self.audio_h, 4), "wall_s": round(self.wall_s, 2), "startup_s": round(self.startup_s, 2),
                "audio_h_per_h": round(self.audio_h * 3600 / self.wall_s, 2) if self.wall_s else None,
                "measured": dict(self.measured),
                "worker_s": {k: round(v, 2) for k, v in self.worker_s.items()},
                "driver_s": {k: round(v, 2) for k, v in self.driver_s.items()}}


@dataclass(frozen=True)
class WorkerNames:
    """What the workers' models are called: the store's producers, and the rules' encoder."""
    encoder: str
    overlap: str | None
    asr: dict[str, str]            # language -> the transcriber's producer for it


class ClipWorker:
    """Every per-clip model, loaded once per worker; each call measures and returns a record."""

    def __init__(self, asr: str | None, encoder: str | None, overlap: str | None, threads: int) -> None:
        import torch

        # the thread count of one process on the driver's machine, for every library, so that the
        # kernels sum in the same order and each figure is the one plain `vet` computes there
        os.environ["CLONEBENCH_THREADS"] = str(threads)
        torch.set_num_threads(threads)
        from .models import clip_models

        self.models = clip_models(asr, encoder, overlap)
        self.signal = screen.SignalScreens()

    def names(self, langs: list[str]) -> WorkerNames:
        m = self.models
        return WorkerNames(m.encoder.name, m.overlap.name if m.overlap else None,
                           {lang: m.transcriber.producer(lang) for lang in langs})

    def measure(self, stage: str, work):
        start = time.perf_counter()
        if stage == "signal":
            out = self.signal.measure(work)
        elif stage == "embed":
            out = screen.measure_embedding(self.models.encoder, work)
        elif stage == "overlap":
            out = screen.measure_overlap(self.models.overlap, work)
        else:
            clips, lang, low_confidence = work
            out = screen.measure_asr(self.models.transcriber, clips, lang, low_confidence)
        return out, time.perf_counter() - start


def _hash(path: Path):
    start = time.perf_counter()
    try:
        return sha256_file(path), time.perf_counter() - start
    except OSError as e:
        return SourceError(str(path), error_message(path, e)), time.perf_counter() - start


def _slice(path: Path, sha: str, opts: IngestOptions):
    start = time.perf_counter()
    try:
        return slice_recording(path, sha, opts), time.perf_counter() - start
    except (UserError, OSError) as e:
        return SourceError(str(path), error_message(path, e)), time.perf_counter() - start


@dataclass
class _Speaker:
    """The driver's view of one speaker while its work is out."""
    job: SpeakerJob
    ingest: IngestOptions
    order: int
    files_left: int
    outstanding: int = 0                                       # clip-stage calls not yet committed
    signal_pending: set[str] = field(default_factory=set)      # clips whose signal figures are not in yet
    asr_held: list = field(default_factory=list)               # (clips, transcripts) waiting for those
    screening: bool = False


class _Driver:
    def __init__(self, opts: VetOptions, jobs: list[SpeakerJob], store: Store, workers: list, names: WorkerNames,
                 rules: RuleSet, timbre, progress) -> None:
        import ray

        self.ray, self.opts, self.store, self.workers, self.names = ray, opts, store, workers, names
        self.jobs = jobs
        self.rules, self.timbre, self.progress = rules, timbre, progress
        self.hash_task = ray.remote(num_cpus=0, max_retries=RETRIES)(_hash)
        self.slice_task = ray.remote(num_cpus=0, max_retries=RETRIES)(_slice)
        self.clip_todo: deque = deque()      # (state, stage, work, done): clip calls, handed out first
        self.file_todo: deque = deque()      # thunks submitting a hash or slice task
        self.busy = dict.fromkeys(range(len(workers)), 0)     # outstanding calls per live worker
        self.lost: list[int] = []            # workers dropped for this run (their node gone)
        self.inflight: dict = {}             # ref -> (worker index or None, the clip call, what to do with the result)
        self.errors: list[tuple[tuple[int, int], SourceError]] = []   # sorted as one process finds them
        self.results: dict[int, VetResult] = {}
        self.worker_s = dict.fromkeys(STAGES, 0.0)
        self.measured = dict.fromkeys(STAGES, 0)
        self.driver_s = {"commit": 0.0, "judge": 0.0}
        self.files = self.clips = self.calls = 0
        self.files_total = sum(len(j.files) for j in jobs)
        self.audio_s = 0.0
        self.slicing: dict[str, list] = {}    # a recording being sliced -> other files with the same bytes
        # hashes are handled in input order, as one process meets the files, so that of two files
        # with the same bytes the first given owns the recording (its speaker, its name)
        self.hashes_made = self.hashes_handled = 0
        self.hashes_early: dict[int, tuple] = {}     # seq -> (state, path, index, result)
        from .speaker import start_speaker

        for k, job in enumerate(jobs):
            state = _Speaker(job, start_speaker(store, job.speaker, job.lang, rules, opts), k, len(job.files))
            for index, path in enumerate(job.files):
                # absolute, so that a worker started in another folder finds the file
                self.file_todo.append(self._hash_call(state, Path(os.path.abspath(path)), index))
            if not job.files:
                self._screen(state)

    # -- submitting ------------------------------------------------------------------------

    def _hash_call(self, state: _Speaker, path: Path, index: int):
        seq, self.hashes_made = self.hashes_made, self.hashes_made + 1
        return lambda: (self.hash_task.remote(path), lambda r: self._hash_in(seq, state, path, index, r))

    def _hash_in(self, seq: int, state: _Speaker, path: Path, index: int, result) -> None:
        self.hashes_early[seq] = (state, path, index, result)
        while self.hashes_handled in self.hashes_early:
            self._hashed(*self.hashes_early.pop(self.hashes_handled))
            self.hashes_handled += 1

    def _clip_call(self, state: _Speaker, stage: str, work, done: Callable) -> None:
        state.outstanding += 1
        self.calls += 1
        self.clip_todo.append((state, stage, work, done))

    def run(self) -> None:
        ray = self.ray
        tasks_cap = IN_FLIGHT * len(self.workers)
        while self.clip_todo or self.file_todo or self.inflight:
            while self.clip_todo and self.busy:
                k = min(self.busy, key=self.busy.get)        # the least busy worker
                if self.busy[k] >= IN_FLIGHT:
                    break
                call = self.clip_todo.popleft()
                state, stage, work, done = call
                self.busy[k] += 1
                ref = self.workers[k].measure.remote(stage, work)
                self.inflight[ref] = (k, call, lambda r, s=state, g=stage, d=done: self._measured(s, g, r, d))
            while self.file_todo and sum(1 for k, _, _ in self.inflight.values() if k is None) < tasks_cap:
                ref, on_done = self.file_todo.popleft()()
                self.inflight[ref] = (None, None, on_done)
            ready, _ = ray.wait(list(self.inflight), num_returns=1)
            for ref in ready:
                k, call, on_done = self.inflight.pop(ref)
                if k is not None and k in self.busy:
                    self.busy[k] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    if k is None:
                        raise
                    self._worker_lost(k, call, e)
                    continue
                on_done(result)

    def _worker_lost(self, k: int, call: tuple, error: Exception) -> None:
        """A worker Ray could not bring back within its retries (its node left): dropped for the
        rest of the run, its call handed to the others. Nothing of it reached the store."""
        if k in self.busy:
            del self.busy[k]
            self.lost.append(k)
            log.warning("Ray worker %d lost (%s); its calls go to the %d left", k, type(error).__name__, len(self.busy))
        if not self.busy:
            raise UserError("vet --ray: every worker was lost; run the same command again to resume") from None
        self.clip_todo.appendleft(call)

    # -- results ---------------------------------------------------------------------------

    def _file_failed(self, state: _Speaker, index: int, error: SourceError) -> None:
        self.store.log_error(error.source, state.job.speaker, error.error)
        self.errors.append(((state.order, index), error))
        self._file_done(state)

    def _hashed(self, state: _Speaker, path: Path, index: int, result) -> None:
        sha, seconds = result
        self.worker_s["ingest"] += seconds
        self.measured["ingest"] += 1
        if isinstance(sha, SourceError):
            return self._file_failed(state, index, sha)
        if sha in self.slicing:           # the same bytes under another name: wait for the first
            self.slicing[sha].append((state, path, index))
            return None
        owner = self.store.recording_owner(sha)
        if owner is None:
            self.slicing[sha] = []
            self.file_todo.appendleft(lambda: (self.slice_task.remote(path, sha, state.ingest),
                                               lambda r: self._sliced(state, path, index, sha, r)))
            return None
        return self._known(state, path, index, sha, owner)

    def _known(self, state: _Speaker, path: Path, index: int, sha: str, owner: str) -> None:
        """A file whose recording the store has: as plain `ingest` treats it."""
        if owner != state.job.speaker:
            return self._file_failed(state, index, SourceError(str(path), str(owner_error(path, owner))))
        if not self.store.clip_count(sha):
            return self._file_failed(state, index, SourceError(str(path), str(nothing_to_vet(path))))
        self._given_text(state, path, sha)
        return self._file_done(state)

    def _sliced(self, state: _Speaker, path: Path, index: int, sha: str, result) -> None:
        sliced, seconds = result
        self.worker_s["ingest"] += seconds
        self._slice_in(state, path, index, sha, sliced)
        for other_state, other_path, other_index in self.slicing.pop(sha):
            owner = self.store.recording_owner(sha)
            if owner is None:            # the first copy failed to decode: so does this one
                error = SourceError(str(other_path), sliced.error.replace(str(path), str(other_path)))
                self._file_failed(other_state, other_index, error)
            else:
                self._known(other_state, other_path, other_index, sha, owner)

    def _slice_in(self, state: _Speaker, path: Path, index: int, sha: str, sliced) -> None:
        if isinstance(sliced, SourceError):
            return self._file_failed(state, index, sliced)
        start = time.perf_counter()
        try:
            commit_recording(self.store, sliced)
        except UserError as e:           # a recording with no sound: registered, and an error
            return self._file_failed(state, index, SourceError(str(path), error_message(path, e)))
        finally:
            self.driver_s["commit"] += time.perf_counter() - start
        self.audio_s += sliced.recording.duration_s
        self.clips += len(sliced.clips)
        self._given_text(state, path, sha)
        return self._file_done(state)

    def _given_text(self, state: _Speaker, path: Path, sha: str) -> None:
        given = state.job.texts.for_file(path)
        if given:
            self.store.put_given_text(GivenText(sha, given.text, given.source, given.lang))

    def _file_done(self, state: _Speaker) -> None:
        self.files += 1
        state.files_left -= 1
        self._show()
        if state.files_left == 0:
            self._screen(state)

    def _screen(self, state: _Speaker) -> None:
        """The speaker's files are all in: every clip stage still pending, as `screen_speaker` finds them."""
        store, speaker, names = self.store, state.job.speaker, self.names
        state.screening = True
        for clip in store.pending(speaker, screen.SIGNAL_STAGE, screen.SIGNAL_PRODUCER):
            state.signal_pending.add(clip.clip_id)
            self._clip_call(state, "signal", clip, lambda fig: self._signal_in(state, fig))
        for clip in store.pending(speaker, screen.embed_stage(names.encoder), names.encoder):
            self._clip_call(state, "embed", clip, lambda fig: screen.commit_embedding(store, fig))
        if names.overlap:
            for clip in store.pending(speaker, screen.OVERLAP_STAGE, names.overlap):
                self._clip_call(state, "overlap", clip, lambda fig: screen.commit_overlap(store, fig))
        lang = state.job.lang
        for batch in screen.asr_batches(store.pending(speaker, screen.ASR_STAGE, names.asr[lang])):
            work = (batch, lang, self.rules.clip.min_avg_logprob)
            self._clip_call(state, "asr", work, lambda out, b=batch: self._asr_in(state, b, out))
        self._maybe_finish(state)

    def _measured(self, state: _Speaker, stage: str, result, done: Callable) -> None:
        figures, seconds = result
        self.worker_s[stage] += seconds
        self.measured[stage] += 1
        start = time.perf_counter()
        done(figures)
        self.driver_s["commit"] += time.perf_counter() - start
        state.outstanding -= 1
        self._show()
        self._maybe_finish(state)

    def _signal_in(self, state: _Speaker, fig: screen.SignalFigures) -> None:
        screen.commit_signal(self.store, fig)
        state.signal_pending.discard(fig.clip_id)
        self._commit_held_asr(state)

    def _asr_in(self, state: _Speaker, batch: list[Clip], transcripts) -> None:
        state.asr_held.append((batch, transcripts))
        self._commit_held_asr(state)

    def _commit_held_asr(self, state: _Speaker) -> None:
        ready = [(b, t) for b, t in state.asr_held if not any(c.clip_id in state.signal_pending for c in b)]
        for batch, transcripts in ready:
            lang = state.job.lang
            screen.commit_asr(self.store, batch, transcripts, lang, self.names.asr[lang])
            state.asr_held.remove((batch, transcripts))

    def _maybe_finish(self, state: _Speaker) -> None:
        if not state.screening or state.files_left or state.outstanding or state.asr_held:
            return
        from .speaker import finish_speaker, speaker_result

        state.screening = False
        start = time.perf_counter()
        job = state.job
        warnings = finish_speaker(self.store, job.speaker, job.lang, self.rules, self.names.encoder, self.timbre)
        self.results[state.order] = speaker_result(self.store, job.speaker, self.rules, self.opts.db, warnings, None)
        self.driver_s["judge"] += time.perf_counter() - start
        log.info("%s: judged (%d clips)", job.speaker, len(self.results[state.order].clips))
        self._show()

    def _show(self) -> None:
        self.progress(RunCounts(self.files, self.files_total, sum(self.measured[s] for s in STAGES if s != "ingest"),
                                self.calls, len(self.results), len(self.jobs), self.audio_s))


def _connect(opts: RayOptions):
    """Ray joined (or started here); an address nothing answers at is a one-line error, not
    Ray's minutes of retries."""
    import ray

    if ray.is_initialized():
        return ray
    kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if opts.address is None:
        ray.init(num_cpus=os.cpu_count() or 1, **kw)
        return ray
    hostport = opts.address.removeprefix("ray://")
    if opts.address != "auto":
        host, _, port = hostport.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as e:
            raise UserError(f"--ray {opts.address}: nothing answers there ({e.strerror or e}); "
                            "give HOST:PORT of the head node, ray://HOST:PORT, auto or local") from None
    try:
        ray.init(address=opts.address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"--ray {opts.address}: cannot join the cluster ({str(e).splitlines()[0]})") from None
    return ray


def _slots(ray, threads: int) -> int:
    """How many workers of `threads` CPUs the cluster's live nodes hold (a worker runs on one node)."""
    return sum(int(node["Resources"].get("CPU", 0)) // threads for node in ray.nodes() if node.get("Alive"))


def _startup_error(e: Exception) -> UserError:
    """A worker that could not load its models: the cause's last line, as plain `vet` would say it."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    cause = next((line for line in reversed(lines) if "Error:" in line), lines[-1] if lines else type(e).__name__)
    return UserError(f"a Ray worker could not load its models: {cause}")


def vet_on_ray(opts: VetOptions, jobs: list[SpeakerJob]) -> tuple[list[VetResult], list[SourceError], ClusterRun]:
    """Vet the speakers' files on a Ray cluster; the store is written by this process alone."""
    import ray

    # Ray prints its own notices (a worker lost, a call retried) to stdout, from threads that
    # live until Ray is shut down; keep stdout for --json
    joined = not ray.is_initialized()
    with contextlib.redirect_stdout(sys.stderr):
        try:
            return _vet_on_ray(opts, jobs)
        finally:
            if joined and ray.is_initialized():
                ray.shutdown()       # leaves a cluster joined; stops the one started here


def _vet_on_ray(opts: VetOptions, jobs: list[SpeakerJob]) -> tuple[list[VetResult], list[SourceError], ClusterRun]:
    from clonebench.instruments.onnx_session import cpu_threads

    ray_opts = opts.ray
    started = time.perf_counter()
    from clonebench import instruments

    rules = RuleSet.load(opts.rules)          # bad --rules and model options fail before any Ray work
    for option, value in (("--asr", opts.asr), ("--speaker-encoder", opts.speaker_encoder), ("--overlap", opts.overlap)):
        instruments.check_spec(option, value)
    timbre = None
    if opts.sv_model is not None:
        from clonebench.instruments.eres2net import ERes2NetV2Encoder

        timbre = ERes2NetV2Encoder(opts.sv_model)
    ray = _connect(ray_opts)
    # a worker computes with as many threads as one process here would, and asks Ray for as many
    # CPUs, so workers never share a core (two workers on this machine's two cores ran slower
    # than one: benchmarks/RESULTS.md)
    threads = cpu_threads()
    slots = _slots(ray, threads)
    n = ray_opts.workers or slots
    if n > slots or not n:
        raise UserError(f"--ray: {n or 1} worker(s) of {threads} CPUs do not fit the cluster's nodes (room for "
                        f"{slots}); give fewer --ray-workers, add nodes, or lower CLONEBENCH_THREADS")
    actor = ray.remote(ClipWorker).options(num_cpus=threads, max_restarts=RETRIES, max_task_retries=RETRIES)
    workers = [actor.remote(opts.asr, opts.speaker_encoder, opts.overlap, threads) for _ in range(n)]
    try:
        try:
            names = ray.get([w.names.remote(sorted({j.lang for j in jobs})) for w in workers],
                            timeout=STARTUP_TIMEOUT_S)[0]
        except ray.exceptions.GetTimeoutError:
            raise UserError(f"--ray: the workers were not ready after {STARTUP_TIMEOUT_S:.0f} s") from None
        except ray.exceptions.RayError as e:
            raise _startup_error(e) from None
        startup = time.perf_counter() - started
        rules = rules.for_encoder(names.encoder)
        with Store(opts.db) as store, run_progress("vet --ray") as progress:
            driver = _Driver(opts, jobs, store, workers, names, rules, timbre, progress)
            driver.run()
    finally:
        for w in workers:
            ray.kill(w)
    missing = [j.speaker for k, j in enumerate(jobs) if k not in driver.results]
    if missing:    # every call answered, yet a speaker was never judged: a bug, said plainly
        raise RuntimeError(f"vet --ray: speakers never judged: {', '.join(missing)}")
    run = ClusterRun(ray_opts.address or "local", n, driver.files, driver.clips, driver.audio_s / 3600,
                     time.perf_counter() - started, startup, driver.measured, driver.worker_s, driver.driver_s)
    errors = [e for _, e in sorted(driver.errors, key=lambda item: item[0])]
    return [driver.results[k] for k in sorted(driver.results)], errors, run
