"""`train`'s pre-flight: what a run will train on and whether it fits, found before any feature is
computed or any step taken.

- Audio: per speaker, the seconds the training set keeps (`trainset`'s filters) and what it left
  out, by kind, with the seconds lost.
- The longest clip sets every stage's peak: batches are length-bucketed, so its batch holds clips
  about as long.
- Memory is measured, not modelled. `probe` takes two training steps of each stage on fresh
  models (the run's configs, device and precision) with synthetic batches shaped like B copies
  of the longest clip. The peak is linear in B, so probes at two small batch sizes give a fixed
  cost (weights, gradients, optimiser moments, the process itself) and a cost per row, and any
  batch size's peak is extrapolated from them. On a CPU the peak is the process's resident set
  (VmHWM, reset through /proc/self/clear_refs before each probe, after handing freed memory
  back to the system); on CUDA, the caching allocator's peak reserved bytes.

A run is refused when it cannot succeed: a named speaker under the minimum (`training_set`
raises), or a peak above the memory there is (`Preflight.refusal`, with the largest batch that
fits). What might still go wrong is a warning.
"""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch

from clonebench.core.errors import UserError

from .config import HOP
from .discriminator import MultiPeriodDiscriminator, discriminator_periods
from .gpt import Text2Semantic
from .sovits import SoVITS
from .steps import S1Batch, S2Batch, autocast_for, s1_parts, s1_step, s2_parts, s2_step

if TYPE_CHECKING:   # the probes run where the store's packages may not be (a bare GPU machine)
    from .trainset import TrainingSet

PROBE_BATCHES = (1, 3)
# The largest batch that "fits" keeps its estimate under this share of the memory: the estimate
# was up to 13 % low (v2 on an H200 and on a 2-core CPU; benchmarks/RESULTS.md), and what the probes
# do not see (fragmentation, logging, the store) needs room too.
HEADROOM = 0.85
AUTO_BATCH_CAP = 32     # `--batch-size auto`: at most this, and a quarter of the training clips
LOW_AUDIO_S = 60.0      # under this a speaker trains, with a warning


@dataclass(frozen=True)
class LeftOut:
    kind: str               # no transcript, language, length, text, phones per second, too little audio
    clips: int
    seconds: float
    example: str            # one reason in full


@dataclass(frozen=True)
class SpeakerAudio:
    speaker: str
    clips: int              # kept (training and validation); 0 for a speaker under the minimum
    seconds: float
    left_out: tuple[LeftOut, ...]
    trained: bool           # False: under the minimum, left out of the run


@dataclass(frozen=True)
class ClipShape:
    """The longest clip, as the probes shape their batches."""
    clip_id: str
    speaker: str
    seconds: float
    frames: int             # 50 Hz (content features, spectrogram); the GPT sees frames // 2 codes
    phones: int


@dataclass(frozen=True)
class MemoryFit:
    device: str
    measure: str                            # what "peak" means on this device
    probes: tuple[tuple[int, int], ...]     # (batch size, measured peak bytes)
    fixed_bytes: int
    per_row_bytes: int                      # at the longest clip's length
    available_bytes: int

    def at(self, batch_size: int) -> int:
        return self.fixed_bytes + self.per_row_bytes * batch_size

    def largest_batch(self, fraction: float = HEADROOM) -> int:
        """The largest batch whose estimate stays under `fraction` of the memory there is (0: none)."""
        room = fraction * self.available_bytes - self.fixed_bytes
        if room < self.per_row_bytes:
            return 0
        return int(room // self.per_row_bytes) if self.per_row_bytes else AUTO_BATCH_CAP


@dataclass(frozen=True)
class Preflight:
    speakers: tuple[SpeakerAudio, ...]
    longest: ClipShape
    batch_size: int                 # what the run uses (`auto` resolved)
    train_clips: int                # a batch holds at most this many rows
    memory: MemoryFit | None        # None: not measured (a resumed run, or a system that cannot)
    warnings: tuple[str, ...]
    refusal: str | None

    @property
    def estimated_bytes(self) -> int | None:
        return self.memory.at(min(self.batch_size, self.train_clips)) if self.memory else None

    def lines(self) -> list[str]:
        out = []
        for s in self.speakers:
            lost = "; ".join(f"{x.clips} x {x.kind} ({x.seconds:.0f} s)" for x in s.left_out) or "nothing"
            state = "" if s.trained else " — not trained"
            out.append(f"{s.speaker}: {s.seconds:.0f} s usable in {s.clips} clips; left out: {lost}{state}")
        c = self.longest
        out.append(f"longest clip: {c.clip_id} ({c.speaker}, {c.seconds:.1f} s, {c.phones} phones)")
        m = self.memory
        if m is not None:
            out.append(f"memory ({m.device}, {m.measure}): about {_gib(self.estimated_bytes)} at batch {self.batch_size} "
                       f"with every row as long as the longest clip ({_gib(m.per_row_bytes)} a row over "
                       f"{_gib(m.fixed_bytes)} fixed, extrapolated from probes at batch "
                       f"{' and '.join(str(b) for b, _ in m.probes)}); {_gib(m.available_bytes)} there; "
                       f"largest batch that fits: {m.largest_batch()}")
        return out + [f"warning: {w}" for w in self.warnings]

    def to_json(self) -> dict:
        return asdict(self)


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


# -- audio ------------------------------------------------------------------------------------

def audio_summary(data: TrainingSet) -> tuple[SpeakerAudio, ...]:
    kept: dict[str, list[float]] = {}
    for c in data.train + data.val:
        kept.setdefault(c.speaker, []).append(c.duration_s)
    lost: dict[str, dict[str, list]] = {}
    under = set()
    for s in data.skipped:
        if "clip_id" not in s:
            under.add(s["speaker"])
            continue
        group = lost.setdefault(s["speaker"], {}).setdefault(s["kind"], [0, 0.0, s["reason"]])
        group[0] += 1
        group[1] += s["duration_s"]
    out = []
    for speaker in sorted(set(kept) | set(lost) | under):
        # a speaker under the minimum has no kept clips: its usable audio is the clips that passed
        # the clip filters (the seconds `training_set` measured against the minimum)
        usable = next((s for s in data.skipped if "clip_id" not in s and s["speaker"] == speaker), None)
        clips = kept.get(speaker, [])
        left = tuple(LeftOut(kind, n, secs, example)
                     for kind, (n, secs, example) in sorted(lost.get(speaker, {}).items(), key=lambda kv: -kv[1][1]))
        out.append(SpeakerAudio(speaker, len(clips), usable["duration_s"] if usable else sum(clips), left,
                                bool(clips) and speaker not in under))
    return tuple(out)


def longest_clip(data: TrainingSet) -> ClipShape:
    c = max(data.train + data.val, key=lambda c: (c.duration_s, len(c.phones)))
    return ClipShape(c.clip_id, c.speaker, c.duration_s, int(c.duration_s * 32000) // HOP // 2 * 2, len(c.phones))


# -- memory -----------------------------------------------------------------------------------

def _rss_peak_reset() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)   # freed heap back to the system, so the reset starts low
    except OSError:
        pass
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def can_measure(device: torch.device) -> bool:
    """Whether this system lets a process reset and read its peak memory (some sandboxes have no
    /proc/self/clear_refs)."""
    if device.type == "cuda":
        return True
    try:
        _rss_peak_reset()
        _status_kib("VmHWM")
        return True
    except OSError:
        return False


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        _rss_peak_reset()


def read_peak(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_reserved(device)
    return _status_kib("VmHWM")


def available(device: torch.device) -> int:
    """What this process's peak may reach: on CUDA the card's free memory plus what torch holds;
    on a CPU the resident set plus what the system says is available (and a cgroup's limit)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device)
    rss = _status_kib("VmRSS")
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    room = rss + info.get("MemAvailable", info["MemFree"])
    limit = _cgroup_room()
    return room if limit is None else min(room, rss + limit)


def _cgroup_room() -> int | None:
    """What a container's memory limit leaves (cgroup v2, else v1), page cache the kernel can drop
    not counted as used; None without a limit."""
    for limit_file, usage_file, cache_key in (("memory.max", "memory.current", "inactive_file"),
                                              ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
                                               "total_inactive_file")):
        try:
            limit = Path("/sys/fs/cgroup", limit_file).read_text().strip()
            used = int(Path("/sys/fs/cgroup", usage_file).read_text())
            stat = Path("/sys/fs/cgroup", limit_file).with_name("memory.stat").read_text().split()
        except OSError:
            continue
        if limit == "max" or int(limit) >= 2 ** 60:   # v1 says "no limit" with a huge number
            return None
        cache = dict(zip(stat[::2], stat[1::2])).get(cache_key, "0")
        return int(limit) - used + int(cache)
    return None


def weights_floor(s_config, g_config) -> int:
    """Weights, gradients and Adam moments (16 bytes a parameter) of SoVITS, its discriminator and
    the GPT: no batch size fits under this."""
    with torch.device("meta"):
        params = (sum(p.numel() for p in SoVITS(s_config).parameters())
                  + sum(p.numel() for p in MultiPeriodDiscriminator(discriminator_periods(s_config),
                                                                    narrow=s_config.disc_narrow).parameters())
                  + sum(p.numel() for p in Text2Semantic(g_config).parameters()))
    return params * 16


def probe(s_config, g_config, shape: ClipShape, batch_size: int, device: torch.device, amp: str,
          frozen: bool) -> int:
    """The peak memory of two steps of each stage at `batch_size` rows of the longest clip's shape,
    with both models resident as in a run. Every random stream is put back as it was."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        reset_peak(device)
        autocast = autocast_for(device, amp)
        sovits, gpt = SoVITS(s_config).to(device).train(), Text2Semantic(g_config).to(device).train()
        b, f, p = batch_size, shape.frames, shape.phones
        s2 = S2Batch(torch.randn(b, s_config.ssl_dim, f), torch.randn(b, s_config.spec_channels, f).abs(),
                     torch.full((b,), f), torch.randn(b, f * HOP) * 0.1, torch.randint(1, 300, (b, p)),
                     torch.full((b,), p), torch.randn(b, s_config.sv_dim) if s_config.sv_dim else None).to(device)
        parts = s2_parts(sovits, device, frozen)
        for _ in range(2):
            s2_step(parts, s2, autocast)
        del parts, s2
        s1 = S1Batch(*(t.to(device) for t in (
            torch.randint(1, 300, (b, p)), torch.full((b,), p), torch.zeros(b, g_config.bert_dim, p),
            torch.randint(0, g_config.vocab_size - 1, (b, f // 2)), torch.full((b,), f // 2))))
        gparts = s1_parts(gpt, 1e-4, 10, device)
        for k in range(2):
            s1_step(gparts, s1, k, 1, autocast)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        peak = read_peak(device)
        del gparts, s1, sovits, gpt
        reset_peak(device)
    return peak


def fit_memory(s_config, g_config, shape: ClipShape, device: torch.device, amp: str, frozen: bool,
               sizes: tuple[int, int] = PROBE_BATCHES, share: int = 1, limit: int | None = None) -> MemoryFit:
    """`share`: processes that train side by side in this memory (torchrun on one host's CPU);
    `limit`: at most this much is there (`train --memory-limit`, for a shared machine)."""
    there = available(device) // share
    there = there if limit is None else min(there, limit)
    floor = weights_floor(s_config, g_config)
    if floor > there:
        raise UserError(f"this model's weights, gradients and optimiser state alone need {_gib(floor)}; "
                        f"{_gib(there)} is free on {device}: use a smaller preset or another device")
    peaks = []
    for b in sizes:
        try:
            peaks.append((b, probe(s_config, g_config, shape, b, device, amp, frozen)))
        except torch.OutOfMemoryError:
            if not peaks:
                raise UserError(f"a training step at batch {b} on the longest clip ({shape.clip_id}, "
                                f"{shape.seconds:.1f} s) ran out of memory on {device}: it can never fit; "
                                "drop the longest clips or use a smaller preset") from None
            reset_peak(device)
            # the first batch fitted and this one did not: no larger batch fits, and a row costs
            # at least what was left over the first probe's peak
            (b1, p1) = peaks[0]
            per_row = max(1, round((there - p1) / (b - b1)))
            measure = "peak reserved by torch's CUDA allocator" if device.type == "cuda" else "peak resident set"
            return MemoryFit(str(device), measure, tuple(peaks), p1 - per_row * b1, per_row, there)
    (b1, p1), (b2, p2) = peaks
    per_row = max(0, round((p2 - p1) / (b2 - b1)))
    measure = "peak reserved by torch's CUDA allocator" if device.type == "cuda" else "peak resident set"
    return MemoryFit(str(device), measure, tuple(peaks), p1 - per_row * b1, per_row, there)


def preflight(data: TrainingSet, s_config, g_config, batch_size: int | str, device: torch.device, amp: str,
              frozen: bool, measure: bool = True, share: int = 1, limit: int | None = None) -> Preflight:
    """Everything `train` says before its first feature. `batch_size` may be "auto": the largest
    that fits, at most AUTO_BATCH_CAP and a quarter of the training clips. With `measure` off (a resumed run)
    memory is not probed and `batch_size` must be a number."""
    speakers = audio_summary(data)
    longest = longest_clip(data)
    memory = fit_memory(s_config, g_config, longest, device, amp, frozen, share=share, limit=limit) if measure else None
    warnings = [f"{s.speaker} has {s.seconds:.0f} s of usable audio; {LOW_AUDIO_S:.0f}-120 s is what cloning wants"
                for s in speakers if s.trained and s.seconds < LOW_AUDIO_S]
    refusal = None
    if memory is not None:
        fits = memory.largest_batch()
        if batch_size == "auto":   # the largest with room to spare; else 1 if it fits at all
            batch_size = max(1, min(fits, AUTO_BATCH_CAP, len(data.train) // 4))   # four steps an epoch at least
        rows = min(batch_size, len(data.train))   # a batch never holds more rows than there are clips
        there = memory.available_bytes
        if memory.at(rows) > there:
            refusal = (f"batch {batch_size} needs about {_gib(memory.at(rows))} at the longest clip "
                       f"({longest.clip_id}, {longest.seconds:.1f} s) and {_gib(there)} is there: "
                       + (f"use --batch-size {fits} (or auto)" if fits else "no batch size fits; use a smaller preset"))
        elif memory.at(rows) > HEADROOM * there:
            warnings.append(f"batch {batch_size} comes within {1 - HEADROOM:.0%} of the memory there, inside the "
                            "estimate's error" + (f"; batch {fits} leaves room" if fits else ""))
    elif batch_size == "auto":
        raise UserError("--batch-size auto measures memory, which this system does not let a process do "
                        "(/proc/self/clear_refs): give a number")
    return Preflight(speakers, longest, int(batch_size), len(data.train), memory, tuple(warnings), refusal)


class PeakMeter:
    """The peak memory of a run's training, paused while something else runs between epochs (the
    checkpoint scoring of `--eval-every` loads its own models): what the estimate is held to."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0
        self.enabled = can_measure(device)

    def pause(self) -> None:
        if self.enabled:
            self.peak = max(self.peak, read_peak(self.device))

    def resume(self) -> None:
        if self.enabled:
            reset_peak(self.device)

    def read(self) -> int | None:
        return max(self.peak, read_peak(self.device)) if self.enabled else None
