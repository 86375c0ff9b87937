"""One training step of each stage, shared by the Trainer (`model.train`), the pre-flight's
memory probes (`model.preflight`) and benchmarks/bench_train.py: the batches, what each stage
trains beside its model (discriminator, optimisers, schedules) and the step itself."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from . import distributed
from .config import HOP
from .discriminator import (
    MultiPeriodDiscriminator,
    discriminator_loss,
    discriminator_periods,
    feature_matching_loss,
    generator_loss,
    kl_loss,
)
from .gpt import Text2Semantic
from .sovits import SoVITS
from .spectrogram import mel_spectrogram


@dataclass(frozen=True)
class S2Batch:
    """A SoVITS batch, right-padded: content features, linear spectrograms, waveforms, phones."""
    ssl: torch.Tensor
    spec: torch.Tensor
    spec_len: torch.Tensor
    wav: torch.Tensor
    phones: torch.Tensor
    phone_len: torch.Tensor
    # the sv_emb input: v2Pro, each clip's own timbre vector (as upstream); v2 (ours), the speaker's
    # timbre-library embedding
    sv: torch.Tensor | None = None

    def to(self, device: torch.device) -> S2Batch:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})


@dataclass(frozen=True)
class S1Batch:
    """A GPT batch, right-padded: phones, their BERT features (zeros: clonebench trains without
    BERT, as upstream does outside Chinese) and the semantic codes s2 gives the clips."""
    phones: torch.Tensor
    phone_len: torch.Tensor
    bert: torch.Tensor
    codes: torch.Tensor
    code_len: torch.Tensor




def autocast_for(device: torch.device, amp: str):
    """bf16 autocast (no loss scaling needed): by default on CUDA only; `amp="bf16"` asks for it on
    a CPU too, which is how the tests keep CUDA training's numerics honest without a GPU (the
    quantizer's codebook and statistics stay fp32 under it)."""
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def adamw(params, device: torch.device, **kw) -> torch.optim.AdamW:
    """AdamW; on CUDA its fused kernel (one launch for all parameters)."""
    return torch.optim.AdamW(params, fused=device.type == "cuda", **kw)


@dataclass(frozen=True)
class S2Parts:
    """What stage s2 trains beside SoVITS: the discriminator, both optimisers (upstream's: AdamW
    1e-4, betas 0.8/0.99, eps 1e-9, the text side at 0.4x) and their per-epoch decay; `*_fwd` are
    the modules the step calls (DDP-wrapped under torchrun)."""
    sovits: SoVITS
    disc: MultiPeriodDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scheds: dict
    sovits_fwd: torch.nn.Module
    disc_fwd: torch.nn.Module
    frozen: bool               # fine-tuning: the semantic codebook (and so the GPT's vocabulary) kept


def s2_parts(sovits: SoVITS, device: torch.device, frozen: bool,
             world: distributed.World = distributed.World()) -> S2Parts:
    c = sovits.config
    disc = MultiPeriodDiscriminator(discriminator_periods(c), narrow=c.disc_narrow).to(device).train()
    if frozen:
        for p in [*sovits.ssl_proj.parameters(), *sovits.quantizer.parameters()]:
            p.requires_grad_(False)
    text_parts = {id(p) for m in (sovits.enc_p.text_embedding, sovits.enc_p.encoder_text, sovits.enc_p.mrte)
                  for p in m.parameters()}
    base = [p for p in sovits.parameters() if p.requires_grad and id(p) not in text_parts]
    low = [p for p in sovits.parameters() if p.requires_grad and id(p) in text_parts]
    kw = {"betas": (0.8, 0.99), "eps": 1e-9}
    opt_g = adamw([{"params": base, "lr": 1e-4}, {"params": low, "lr": 0.4e-4}], device, **kw)
    opt_d = adamw(disc.parameters(), device, lr=1e-4, **kw)
    scheds = {"g": torch.optim.lr_scheduler.ExponentialLR(opt_g, 0.999875),
              "d": torch.optim.lr_scheduler.ExponentialLR(opt_d, 0.999875)}
    # the training forward goes through DDP (the text encoder skips parts on some batches)
    return S2Parts(sovits, disc, opt_g, opt_d, scheds, distributed.wrap(sovits, world, device, unused=True),
                   distributed.wrap(disc, world, device), frozen)


def s2_step(p: S2Parts, batch: S2Batch, autocast) -> dict[str, float]:
    """One discriminator update, then one generator update (adversarial, feature matching, 45x
    mel L1, KL and commitment losses) on a random slice of each clip."""
    if p.frozen:
        p.sovits.quantizer.eval()
    seg = p.sovits.config.segment_size
    with autocast():
        fake, starts, commit, y_mask, (z_p, m_p, logs_p, logs_q) = p.sovits_fwd(
            batch.ssl, batch.spec, batch.spec_len, batch.phones, batch.phone_len, batch.sv)
        idx = (starts * HOP)[:, None] + torch.arange(seg, device=fake.device)[None]
        real = F.pad(batch.wav, (0, seg)).gather(1, idx)[:, None]
        fake = fake[..., :seg]
        r, f, _, _ = p.disc_fwd(real, fake.detach())
        loss_d = discriminator_loss(r, f)
    p.opt_d.zero_grad()
    loss_d.backward()
    torch.nn.utils.clip_grad_norm_(p.disc.parameters(), 1000.0)
    p.opt_d.step()
    with autocast():
        r, f, fr, ff = p.disc_fwd(real, fake)
    mel = F.l1_loss(mel_spectrogram(fake[:, 0].float()), mel_spectrogram(real[:, 0].float()))
    kl = kl_loss(z_p, logs_q, m_p, logs_p, y_mask)
    loss_gen, loss_fm = generator_loss(f), feature_matching_loss(fr, ff)
    loss_g = loss_gen + loss_fm + 45 * mel + kl + commit
    p.opt_g.zero_grad()
    loss_g.backward()
    torch.nn.utils.clip_grad_norm_(p.sovits.parameters(), 1000.0)
    p.opt_g.step()
    return {"mel": mel.item(), "kl": kl.item(), "gen": loss_gen.item(), "fm": loss_fm.item(),
            "disc": loss_d.item(), "commit": float(commit.detach())}


@dataclass(frozen=True)
class S1Parts:
    """What stage s1 trains the GPT with: AdamW, linear warm-up then cosine decay to 0.1x over
    `total` optimiser steps; `gpt_fwd` is DDP-wrapped under torchrun."""
    gpt: Text2Semantic
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gpt_fwd: torch.nn.Module


def s1_parts(gpt: Text2Semantic, lr: float, total: int, device: torch.device,
             world: distributed.World = distributed.World()) -> S1Parts:
    opt = adamw(gpt.parameters(), device, lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    warmup = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(k, total) / total))))
    return S1Parts(gpt, opt, sched, distributed.wrap(gpt, world, device))


def s1_step(p: S1Parts, batch: S1Batch, k: int, grad_accum: int, autocast) -> tuple[torch.Tensor, torch.Tensor]:
    """The summed cross-entropy of batch k; the optimiser steps every `grad_accum` batches."""
    with autocast():
        loss, acc = p.gpt_fwd(batch.phones, batch.phone_len, batch.bert, batch.codes, batch.code_len)
    (loss / grad_accum).backward()
    if (k + 1) % grad_accum == 0:
        torch.nn.utils.clip_grad_norm_(p.gpt.parameters(), 1.0)
        p.opt.step()
        p.sched.step()
        p.opt.zero_grad()
    return loss, acc
