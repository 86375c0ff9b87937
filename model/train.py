"""Training: stage s2 (SoVITS, with its discriminator) then stage s1 (GPT on s2's semantic tokens).

One loop (`Trainer.run_stage`, over a `Stage` record) serves both stages: deterministic length-bucketed batches per epoch,
a native checkpoint every `save_every` steps and at each epoch's end (written atomically, the
last `keep` kept), losses to the store, a CSV and TensorBoard when installed. `resume`
continues from the newest checkpoint with the same RNG states and data position, so a run
killed at any point ends with the weights of an unbroken run (on a CPU, fixed seed).
Started by `torchrun`, the same loop trains with DistributedDataParallel (`model.distributed`).

Optimisers: s2 as upstream (AdamW 1e-4, betas 0.8/0.99, eps 1e-9, ExponentialLR 0.999875 per
epoch; text embedding, text encoder and MRTE at 0.4x). s1 uses AdamW with linear warm-up and
cosine decay and summed cross-entropy, gradient clipping 1.0 and optional accumulation, in
place of upstream's ScaledAdam (not reimplemented; it plays the same role of a warmed-up,
decaying adaptive optimiser).
"""

from __future__ import annotations

import glob
import logging
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from clonebench.core.errors import UserError
from clonebench.core.progress import progress_bar
from clonebench.store import Store

from . import checkpoint, distributed
from .config import HOP, preset
from .features import check_compatible, content_extractor
from .gpt import Text2Semantic
from .preflight import PeakMeter, can_measure, preflight
from .run_log import RunLog, run_config
from .sovits import SoVITS
from .spec import load_timbre_model
from .spectrogram import mel_spectrogram
from .steps import S1Batch, S2Batch, autocast_for, s1_parts, s1_step, s2_parts, s2_step
from .trainset import FeatureCache, TrainClip, training_set

log = logging.getLogger(__name__)
SV_ENCODER = "resemblyzer"


@dataclass
class TrainOptions:
    db: Path
    out: Path
    speakers: list[str] | None = None          # None: every speaker with enough audio
    preset: str = "tiny"
    init_gpt: Path | None = None
    init_sovits: Path | None = None
    s2_epochs: int = 8
    s1_epochs: int = 8
    batch_size: int | str = 4                  # or "auto": the largest the pre-flight finds fits
    grad_accum: int = 1
    s1_lr: float = 1e-3
    device: str = "cpu"
    amp: str = "auto"                          # bf16 autocast: auto (on CUDA), bf16 (also on a CPU), none
    resume: bool = False
    seed: int = 1234
    save_every: int = 50
    keep: int = 3
    content: str | None = None                 # default: the preset's / init file's extractor
    speaker_embeddings: bool = True            # v2: our sv_emb path (off: files are exactly v2's)
    sv_model: Path | None = None               # v2Pro/v2ProPlus: the ERes2NetV2 file (else CLONEBENCH_SV_MODEL)
    memory_limit_gib: float | None = None      # the pre-flight takes at most this much memory to be there
    eval_every: int = 0                        # export (and hand to `on_pair`) a GPT file every N s1 epochs; 0: at the end only
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise UserError(f"--batch-size must be a whole number of at least 1, or auto, not {self.batch_size!r}")
        for name in ("grad_accum", "save_every", "keep"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
        if self.memory_limit_gib is not None and self.memory_limit_gib <= 0:
            raise UserError("--memory-limit must be a positive number of GiB")
        if self.s2_epochs < 0 or self.s1_epochs < 0 or self.eval_every < 0:
            raise UserError("--s2-epochs, --s1-epochs and --eval-every cannot be negative")
        if self.amp not in ("auto", "bf16", "none"):
            raise UserError(f"--amp must be auto, bf16 or none, not {self.amp!r}")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise UserError(f"--device {self.device}: use cpu or cuda")
        preset(self.preset)   # an unknown preset fails here, before --out is made
        for flag, path in (("--init-gpt", self.init_gpt), ("--init-sovits", self.init_sovits),
                           ("--sv-model", self.sv_model)):
            if path is not None and not Path(path).is_file():
                raise UserError(f"{flag} {path}: no such file")
        if not self.resume and newest_native(Path(self.out)) is not None:
            raise UserError(f"{self.out} already holds a training run: pass --resume to continue it, or choose another --out")


# -- batches and stages ---------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """What `Trainer.run_stage` needs of one stage. `models`, `optims` and `scheds` are saved in
    its checkpoints beside the SoVITS and GPT weights; `epoch_scheds` step at each epoch's end."""
    name: str
    epochs: int
    make_batch: Callable[[list[TrainClip]], object]
    step: Callable[[object, int], dict[str, float]]
    validate: Callable[[], dict[str, float]] | None
    models: dict
    optims: dict
    scheds: dict
    epoch_scheds: tuple = ()
    at_epoch_end: Callable[[int, int], None] | None = None   # (epochs done, step), on the main process


@dataclass(frozen=True)
class EpochPair:
    """A GPT-SoVITS pair a run exported between epochs (`TrainOptions.eval_every`)."""
    run_name: str
    epoch: int                # s1 epochs done
    step: int
    gpt: Path
    sovits: Path


# -- batching -------------------------------------------------------------------------------

def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffle, sort by length inside buckets of 8 batches, cut, shuffle the batches. Deterministic."""
    rng = np.random.default_rng([seed, epoch])
    order = list(rng.permutation(len(lengths)))
    bucket = batch_size * 8
    batches = []
    for i in range(0, len(order), bucket):
        chunk = sorted(order[i:i + bucket], key=lambda k: lengths[k])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[k] for k in rng.permutation(len(batches))]


def _pad(tensors: list[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad along the last axis -> (batch, lengths)."""
    n = max(t.shape[-1] for t in tensors)
    out = torch.stack([F.pad(t, (0, n - t.shape[-1]), value=value) for t in tensors])
    return out, torch.tensor([t.shape[-1] for t in tensors])


# -- checkpoints ----------------------------------------------------------------------------

def _rng_state() -> dict:
    """As tensors and ints only: native checkpoints are read back with the weights-only unpickler."""
    _, keys, pos, *_ = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(keys.astype(np.int64)),
            "numpy_pos": int(pos), "python": list(random.getstate()[1])}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(("MT19937", s["numpy"].numpy().astype(np.uint32), int(s["numpy_pos"])))
    random.setstate((3, tuple(int(v) for v in s["python"]), None))


def _native_paths(out: Path, stage: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(str(out / "native" / f"{stage}-*.pt")))


def newest_native(out: Path) -> Path | None:
    for stage in ("s1", "s2"):   # s1 checkpoints exist only once s2 is done
        paths = _native_paths(out, stage)
        if paths:
            return paths[-1]
    return None


# -- the trainer ----------------------------------------------------------------------------

class Trainer:
    """Built whole: the data, its features, the configs and both models (with their initial
    weights) are ready when the constructor returns; `run` only trains and exports."""

    def __init__(self, opts: TrainOptions, on_pair: Callable[[EpochPair], None] | None = None):
        """`on_pair` is handed each epoch's GPT-SoVITS pair that `eval_every` exports (on the main
        process, between epochs; it cannot move the training's random streams)."""
        self.opts = opts
        self.on_pair = on_pair
        self.out = Path(opts.out)
        self.world = distributed.from_env()
        self.device = distributed.start(self.world, torch.device(opts.device))
        if self.device.type == "cuda":  # fp32 matrix products (outside autocast) on tensor cores
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.run_name = self.out.name
        self.log = RunLog(opts.db, self.out, self.run_name, main=self.world.main)
        torch.manual_seed(opts.seed)
        random.seed(opts.seed)
        np.random.seed(opts.seed % 2 ** 32)
        for turn in range(self.world.size):  # one process at a time: the store is never shared
            if turn == self.world.rank:
                self._load_data()
            self.world.barrier()
        self._preflight()   # every process at once: the probes' collectives (the codebook's sync) pair up
        for turn in range(self.world.size):  # rank 0 computes the features, the others find them cached
            if turn == self.world.rank:
                self._build_features()
            self.world.barrier()
        self.sovits = SoVITS(self.s_config).to(self.device)
        self.gpt = Text2Semantic(self.g_config).to(self.device)
        if self.init_sovits_state:
            # our v2 sv_emb path starts at zero when the file has none; a Pro file brings its own
            fresh = ("enc_q.",) if self.s_config.is_pro else ("enc_q.", "sv_emb.")
            checkpoint.load_into(self.sovits, self.init_sovits_state, opts.init_sovits, fresh)
        if self.init_gpt_state:
            checkpoint.load_into(self.gpt, self.init_gpt_state, opts.init_gpt)

    @property
    def autocast(self):
        return autocast_for(self.device, self.opts.amp)

    # setup -----------------------------------------------------------------------------------
    def _load_data(self) -> None:
        """The training set, configs, content extractor and timbre model."""
        o = self.opts
        self.data = training_set(o.db, o.speakers)
        reasons: dict[str, int] = {}
        for s in self.data.skipped:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            log.info("left out of training: %d x %s", n, reason)
        s_config, g_config = preset(o.preset)
        self.init_sovits_state = self.init_gpt_state = None
        if o.init_sovits:
            s_config, self.init_sovits_state, _ = checkpoint.load_sovits(o.init_sovits)
        if o.init_gpt:
            g_config, self.init_gpt_state, _ = checkpoint.load_gpt(o.init_gpt)
        s_config.disc_narrow = preset(o.preset)[0].disc_narrow
        if o.speaker_embeddings and not s_config.sv_dim:
            s_config.sv_dim, s_config.sv_encoder = 256, SV_ENCODER
        self.extractor = content_extractor(o.content or s_config.ssl_extractor)
        check_compatible(self.extractor, s_config.ssl_extractor, s_config.ssl_dim, "the model")
        self.s_config, self.g_config = s_config, g_config
        self.sv_model = None
        if s_config.is_pro:   # each clip's timbre vector, as upstream's 2-get-sv.py computes it
            self.sv_model = load_timbre_model(o.sv_model, s_config.sv_dim, s_config.version,
                                              o.device if o.device.startswith("cuda") else "cpu")

    def _build_features(self) -> None:
        """The feature cache (computing what is missing) and the v2 timbre library."""
        self.cache = FeatureCache(self.opts.db, self.extractor, self.sv_model)
        self.cache.build(self.data.train + self.data.val)
        self.timbre = self._timbre_library() if self.s_config.sv_dim and not self.s_config.is_pro else {}

    def _preflight(self) -> None:
        """Say what the run trains on and what it needs (`model.preflight`), and refuse it now if
        it cannot succeed; `--batch-size auto` becomes a number here. A resumed run keeps the
        batch size it started with and is not probed again."""
        o = self.opts
        resumed = newest_native(self.out) if o.resume else None
        batch = o.batch_size
        if resumed is not None:
            batch = checkpoint.load_native(resumed)["training"]["options"]["batch_size"]
            if o.batch_size not in ("auto", batch):
                log.warning("resuming at batch %d, the run's own, not --batch-size %s", batch, o.batch_size)
        elif batch == "auto" and self.world.enabled:
            raise UserError("--batch-size auto is for one process; under torchrun give a number")
        measure = resumed is None and can_measure(self.device)
        if measure:   # the content extractor's working memory is resident in a run (it made the features): so here
            longest = max(c.duration_s for c in self.data.train + self.data.val)
            self.extractor.encode(np.zeros(int(16000 * min(longest, 30.0)), np.float32))
        if resumed is None and not measure:
            log.warning("pre-flight: this system does not let a process measure its peak memory; not estimated")
        # processes of one host's CPU share its memory; each GPU is its own
        share = self.world.size if self.device.type == "cpu" and self.world.enabled else 1
        limit = None if o.memory_limit_gib is None else int(o.memory_limit_gib * 2 ** 30)
        pf = preflight(self.data, self.s_config, self.g_config, batch, self.device, o.amp,
                       frozen=o.init_sovits is not None, measure=measure, share=share, limit=limit)
        if self.world.enabled:   # every process refuses, or none does (one refusing alone would leave the rest waiting)
            pf = replace(pf, refusal=distributed.first_refusal(pf.refusal, self.world))
        for line in pf.lines():
            log.info("pre-flight: %s", line)
        if pf.refusal:
            raise UserError(f"pre-flight: {pf.refusal}")
        self.preflight = pf
        self.opts = replace(o, batch_size=pf.batch_size)

    def _timbre_library(self) -> dict[str, torch.Tensor]:
        from clonebench.instruments.speakers import ENCODER

        with Store(self.opts.db, read_only=True) as store:
            lib = {s: torch.from_numpy(v) for s, v in store.speaker_embeddings(ENCODER).items()}
        missing = [s for s in self.data.speakers if s not in lib]
        if missing:
            raise UserError(f"no timbre-library entry for {', '.join(missing)}: vet their recordings again")
        return lib

    def s2_batch(self, clips: list[TrainClip]) -> S2Batch:
        items = [self.cache.load(c) for c in clips]
        ssl, _ = _pad([i["ssl"] for i in items])
        spec, spec_len = _pad([i["spec"] for i in items])
        wav, _ = _pad([i["wav"] for i in items])
        phones, phone_len = _pad([i["phones"] for i in items])
        if self.s_config.is_pro:
            sv = torch.stack([i["timbre"] for i in items])
        else:
            sv = torch.stack([self.timbre[c.speaker] for c in clips]) if self.s_config.sv_dim else None
        return S2Batch(ssl, spec, spec_len, wav, phones.long(), phone_len, sv).to(self.device)

    # the shared loop -------------------------------------------------------------------------
    def run_stage(self, stage: Stage, state: dict | None) -> None:
        """Train one stage from the start, or from the position a native checkpoint saved."""
        clips = self.data.train
        lengths = [len(c.phones) for c in clips]
        world = self.world
        per_epoch = len(world.shard(epoch_batches(lengths, self.opts.batch_size, self.opts.seed, 0)))
        if per_epoch == 0:
            raise UserError(f"{len(clips)} training clips make fewer batches than the {world.size} processes")
        start_epoch, start_batch, step = 0, 0, 0
        if state is not None:
            if state.get("world_size", 1) != world.size:
                raise UserError(f"this run was trained with {state.get('world_size', 1)} processes; resume it with as many")
            start_epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
            # last, so that building the stage (e.g. the discriminator's init) cannot shift the stream
            _set_rng_state(state["rng"])
        if world.enabled:  # replicas crop different segments (checkpoints hold rank 0's RNG state)
            torch.manual_seed(self.opts.seed * 7919 + step * world.size + world.rank)
        total = stage.epochs * per_epoch
        with progress_bar(total - step, f"train {stage.name}") as advance:
            for epoch in range(start_epoch, stage.epochs):
                batches = world.shard(epoch_batches(lengths, self.opts.batch_size, self.opts.seed, epoch))
                for b in range(start_batch if epoch == start_epoch else 0, len(batches)):
                    t0 = time.perf_counter()
                    losses = stage.step(stage.make_batch([clips[k] for k in batches[b]]), step)
                    step += 1
                    self.log.step(stage.name, step, epoch, losses, _lr(stage.optims),
                                  len(batches[b]) * world.size / (time.perf_counter() - t0))
                    advance()
                    last_of_epoch = b == len(batches) - 1
                    if last_of_epoch:
                        for s in stage.epoch_scheds:
                            s.step()
                    if world.main and (step % self.opts.save_every == 0 or last_of_epoch):
                        nxt = (epoch + 1, 0) if last_of_epoch else (epoch, b + 1)
                        if last_of_epoch and stage.validate and self.data.val:
                            self.log.step(f"{stage.name}-val", step, epoch, stage.validate(), _lr(stage.optims), 0.0)
                        self._save(stage, {"epoch": nxt[0], "batch": nxt[1], "step": step})
                        if last_of_epoch and stage.at_epoch_end is not None:
                            stage.at_epoch_end(epoch + 1, step)

    def _save(self, stage: Stage, position: dict) -> None:
        path = self.out / "native" / f"{stage.name}-{position['step']:07d}.pt"
        checkpoint.save_native(path, sovits=self.sovits, gpt=self.gpt if stage.name == "s1" else None,
                               sovits_config=self.s_config, gpt_config=self.g_config, training={
                                   "stage": stage.name, **position, "rng": _rng_state(), "world_size": self.world.size,
                                   "data_hash": self.data.data_hash, "seed": self.opts.seed, "options": _plain_options(self.opts),
                                   "models": {k: m.state_dict() for k, m in stage.models.items()},
                                   "optims": {k: o.state_dict() for k, o in stage.optims.items()},
                                   "scheds": {k: s.state_dict() for k, s in stage.scheds.items()}})
        for old in _native_paths(self.out, stage.name)[:-self.opts.keep]:
            old.unlink(missing_ok=True)
        self.log.flush()

    # stage s2 --------------------------------------------------------------------------------
    def train_s2(self, state: dict | None) -> None:
        self.sovits.train()
        parts = s2_parts(self.sovits, self.device, frozen=self.init_sovits_state is not None, world=self.world)
        models, optims = {"disc": parts.disc}, {"g": parts.opt_g, "d": parts.opt_d}
        if state is not None:
            _restore(state, models, optims, parts.scheds)
        seg = self.s_config.segment_size

        def validate():
            with torch.random.fork_rng(), torch.no_grad():   # validation never moves the training RNG
                torch.manual_seed(0)
                self.sovits.eval()
                mels = []
                for i in range(0, len(self.data.val), self.opts.batch_size):
                    batch = self.s2_batch(self.data.val[i:i + self.opts.batch_size])
                    fake, starts, *_ = self.sovits(batch.ssl, batch.spec, batch.spec_len, batch.phones,
                                                   batch.phone_len, batch.sv)
                    idx = (starts * HOP)[:, None] + torch.arange(seg, device=starts.device)[None]
                    real = F.pad(batch.wav, (0, seg)).gather(1, idx)
                    mels.append(F.l1_loss(mel_spectrogram(fake[:, 0, :seg]), mel_spectrogram(real)).item())
                self.sovits.train()
            return {"mel": float(np.mean(mels))}

        self.run_stage(Stage("s2", self.opts.s2_epochs, self.s2_batch, lambda batch, _: s2_step(parts, batch, self.autocast),
                             validate, models, optims, parts.scheds, epoch_scheds=tuple(parts.scheds.values())), state)
        self.sovits.eval()

    # stage s1 --------------------------------------------------------------------------------
    def semantic_tokens(self, clips: list[TrainClip]) -> list[torch.Tensor]:
        self.sovits.eval()
        with torch.no_grad():
            return [self.sovits.extract_latent(self.cache.load(c)["ssl"][None].to(self.device))[0, 0].cpu() for c in clips]

    def train_s1(self, state: dict | None) -> None:
        codes = self.semantic_tokens(self.data.train)
        val_codes = self.semantic_tokens(self.data.val)
        self.gpt.train()
        per_epoch = len(epoch_batches([1] * len(self.data.train), self.opts.batch_size, self.opts.seed, 0))
        parts = s1_parts(self.gpt, self.opts.s1_lr, max(1, self.opts.s1_epochs * per_epoch // self.opts.grad_accum),
                         self.device, self.world)
        models, optims, scheds = {}, {"gpt": parts.opt}, {"gpt": parts.sched}
        if state is not None:
            _restore(state, models, optims, scheds)
        index = {c.clip_id: k for k, c in enumerate(self.data.train)}

        def s1_batch(clips: list[TrainClip], code_list: list[torch.Tensor]) -> S1Batch:
            phones, plen = _pad([torch.tensor(c.phones) for c in clips])
            cds, clen = _pad(code_list)
            bert = torch.zeros(len(clips), self.g_config.bert_dim, phones.shape[1])
            return S1Batch(*(t.to(self.device) for t in (phones.long(), plen, bert, cds.long(), clen)))

        def step(clips, k):
            code_list = [codes[index[c.clip_id]] for c in clips]
            loss, acc = s1_step(parts, s1_batch(clips, code_list), k, self.opts.grad_accum, self.autocast)
            n_tokens = sum(len(c) + 1 for c in code_list)   # every code and EOS
            return {"loss": loss.item() / n_tokens, "acc": acc.item()}

        def validate():
            self.gpt.eval()
            with torch.no_grad():
                b = s1_batch(self.data.val, val_codes)
                loss, acc = self.gpt(b.phones, b.phone_len, b.bert, b.codes, b.code_len)
            self.gpt.train()
            return {"loss": loss.item() / sum(len(c) + 1 for c in val_codes), "acc": acc.item()}

        every = self.opts.eval_every
        at_end = (lambda epochs, step: self._epoch_pair(epochs, step)
                  if epochs % every == 0 or epochs == self.opts.s1_epochs else None) if every else None
        self.run_stage(Stage("s1", self.opts.s1_epochs, lambda clips: clips, step, validate, models, optims, scheds,
                             at_epoch_end=at_end), state)
        self.gpt.eval()

    def _epoch_pair(self, epochs: int, step: int) -> None:
        """Export the GPT after `epochs` s1 epochs beside the run's SoVITS file, register it, and
        hand the pair to `on_pair` with every random stream put back as it was."""
        gpt = self.out / f"{self.run_name}-s1-e{epochs}.ckpt"
        checkpoint.save_gpt(gpt, self.gpt, self.g_config, epochs)
        self.log.register([RunLog.checkpoint(gpt, "gpt", self.run_name, "s1", step, epochs, self.data.data_hash)])
        if self.on_pair is not None:
            rng, training = _rng_state(), self.gpt.training
            self.gpt.eval()
            self.meter.pause()
            try:
                self.on_pair(EpochPair(self.run_name, epochs, step, gpt, self.sovits_file))
            finally:
                _set_rng_state(rng)
                self.gpt.train(training)
                self.meter.resume()
        log.info("%s: GPT after %d epochs exported (%s)", self.run_name, epochs, gpt.name)

    @property
    def sovits_file(self) -> Path:
        return self.out / f"{self.run_name}-s2-e{self.opts.s2_epochs}.pth"

    def _export_sovits(self) -> Path:
        path = self.sovits_file
        checkpoint.save_sovits(path, self.sovits, self.s_config, self.opts.s2_epochs, self.log.last_step("s2"))
        self.log.register([RunLog.checkpoint(path, "sovits", self.run_name, "s2", self.log.last_step("s2"),
                                             self.opts.s2_epochs, self.data.data_hash)])
        return path

    # the whole pipeline ----------------------------------------------------------------------
    def run(self) -> dict:
        o = self.opts
        self.out.mkdir(parents=True, exist_ok=True)
        resume_from = newest_native(self.out) if o.resume else None
        preflight_doc = self.preflight.to_json()
        if resume_from is not None:   # the run's own pre-flight (a resumed one measures nothing)
            with Store(o.db, read_only=True) as store:
                before = store.train_run(self.run_name)
            preflight_doc = (before.config.get("preflight") if before else None) or preflight_doc
        self.log.start(o.preset, self.data.speakers, self.data.data_hash,
                       run_config(self.s_config, self.g_config, _plain_options(o), preflight_doc))
        state = None
        if resume_from is not None:
            native = checkpoint.load_native(resume_from)
            if native["training"]["data_hash"] != self.data.data_hash:
                raise UserError(f"{resume_from}: the training data changed since this run started; start a new run")
            self.sovits.load_state_dict(native["sovits"])
            if native["gpt"] is not None:
                self.gpt.load_state_dict(native["gpt"])
            state = native["training"]
            log.info("resuming %s at %s step %d", self.run_name, state["stage"], state["step"])
        self.meter = PeakMeter(self.device)
        if state is None or state["stage"] == "s2":
            self.train_s2(state)
            state = None
        if o.eval_every and self.world.main:   # the s1 epochs' GPT files pair with this one
            self.log.flush()
            self._export_sovits()
        self.train_s1(state)
        self.peak_bytes = self.meter.read()
        in_sync = distributed.replicas_identical([self.sovits, self.gpt], self.world)
        result = {"run": self.run_name, "rank": self.world.rank}
        if self.world.main:
            result = self._export()
        result["processes"] = {"world_size": self.world.size, "replicas_identical": in_sync}
        self.world.barrier()
        distributed.stop(self.world)
        if not in_sync:
            raise RuntimeError("the DDP replicas ended with different weights")
        return result

    def _export(self) -> dict:
        """GPT-SoVITS-format inference files, registered in the checkpoints table."""
        o, data = self.opts, self.data
        s2_steps, s1_steps = self.log.last_step("s2"), self.log.last_step("s1")
        paths = {"sovits": self.sovits_file, "gpt": self.out / f"{self.run_name}-s1-e{o.s1_epochs}.ckpt"}
        if not (o.eval_every and paths["sovits"].is_file()):   # with eval_every both were written and scored already
            checkpoint.save_sovits(paths["sovits"], self.sovits, self.s_config, o.s2_epochs, s2_steps)
        if not (o.eval_every and paths["gpt"].is_file()):
            checkpoint.save_gpt(paths["gpt"], self.gpt, self.g_config, o.s1_epochs)
        memory = {"device": str(self.device), "batch_size": o.batch_size, "peak_bytes": self.peak_bytes,
                  "estimated_bytes": self.preflight.estimated_bytes}
        self.log.finish([RunLog.checkpoint(paths["sovits"], "sovits", self.run_name, "s2", s2_steps, o.s2_epochs, data.data_hash),
                         RunLog.checkpoint(paths["gpt"], "gpt", self.run_name, "s1", s1_steps, o.s1_epochs, data.data_hash)],
                        {"memory": memory})
        return {"preflight": self.preflight.to_json(), "memory": memory,
                "run": self.run_name, "out": str(self.out), "gpt": str(paths["gpt"]), "sovits": str(paths["sovits"]),
                "speakers": data.speakers, "train_clips": len(data.train), "val_clips": len(data.val),
                "skipped": data.skipped, "data_hash": data.data_hash,
                "feature_cache": {"hits": self.cache.hits, "computed": self.cache.misses}}


def _lr(optims: dict) -> float:
    return next(iter(optims.values())).param_groups[0]["lr"]


def _restore(state: dict, models: dict, optims: dict, scheds: dict) -> None:
    for k, m in models.items():
        m.load_state_dict(state["models"][k])
    for k, o in optims.items():
        o.load_state_dict(state["optims"][k])
    for k, s in scheds.items():
        s.load_state_dict(state["scheds"][k])


def _plain_options(o: TrainOptions) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(o).items()}


def train(opts: TrainOptions, on_pair: Callable[[EpochPair], None] | None = None) -> dict:
    return Trainer(opts, on_pair).run()
