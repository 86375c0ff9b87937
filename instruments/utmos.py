"""Naturalness MOS from a local UTMOS folder (`evaluate --utmos DIR`).

Variant: the UTMOS22 *strong learner* (Saeki et al., VoiceMOS Challenge 2022) without its
phoneme encoder — the inference model most tools ship (e.g. SpeechMOS's `utmos22_strong`):
wav2vec 2.0 base features, concatenated per frame with a domain embedding and a listener
("judge") embedding, a bidirectional LSTM, a two-layer projection, the frame scores averaged
and mapped back to the 1-5 scale (x2 + 3, the inverse of the training targets' scaling).

Folder layout (clonebench's own, documented in the README):
    utmos.json          {"variant": "utmos22-strong", "domain_id": 0, "judge_id": 288, dims...}
    head.safetensors    domain_embedding / judge_embedding / blstm / projection weights
    wav2vec2/           a transformers Wav2Vec2Model folder (config.json + weights)
safetensors holds no code, so neither file can run anything when read.
"""

from __future__ import annotations

import json

import numpy as np

from clonebench.core.errors import ModelError, first_line

from .local import Spec, content_sha256, enforce_offline, require

CONFIG, HEAD, SSL = "utmos.json", "head.safetensors", "wav2vec2"
DEFAULTS = {"variant": "utmos22-strong", "ssl_dim": 768, "num_domains": 3, "num_judges": 3000, "domain_dim": 128,
            "judge_dim": 128, "lstm_hidden": 512, "proj_hidden": 2048, "domain_id": 0, "judge_id": 288}


def build_head(cfg: dict):
    import torch
    from torch import nn

    class UTMOSHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.domain_embedding = nn.Embedding(cfg["num_domains"], cfg["domain_dim"])
            self.judge_embedding = nn.Embedding(cfg["num_judges"], cfg["judge_dim"])
            width = cfg["ssl_dim"] + cfg["domain_dim"] + cfg["judge_dim"]
            self.blstm = nn.LSTM(width, cfg["lstm_hidden"], batch_first=True, bidirectional=True)
            self.projection = nn.Sequential(nn.Linear(2 * cfg["lstm_hidden"], cfg["proj_hidden"]), nn.ReLU(),
                                            nn.Dropout(0.3), nn.Linear(cfg["proj_hidden"], 1))

        def forward(self, feats: torch.Tensor) -> torch.Tensor:
            b, t, _ = feats.shape
            ids = lambda v: torch.full((b,), v, dtype=torch.long, device=feats.device)  # noqa: E731
            dom = self.domain_embedding(ids(cfg["domain_id"]))[:, None].expand(b, t, -1)
            judge = self.judge_embedding(ids(cfg["judge_id"]))[:, None].expand(b, t, -1)
            h, _ = self.blstm(torch.cat([feats, dom, judge], dim=-1))
            return self.projection(h).squeeze(-1).mean(dim=1) * 2 + 3

    return UTMOSHead()


def read_config(spec: Spec) -> dict:
    folder = require(spec, [CONFIG, HEAD, f"{SSL}/config.json"], "UTMOS")
    try:
        cfg = {**DEFAULTS, **json.loads((folder / CONFIG).read_text(encoding="utf-8"))}
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{spec.option} {folder / CONFIG}: not valid JSON: {e}") from None
    if cfg["variant"] != "utmos22-strong":
        raise ModelError(f"{spec.option} {folder / CONFIG}: variant {cfg['variant']!r} is not supported (utmos22-strong)")
    if not 0 <= cfg["judge_id"] < cfg["num_judges"] or not 0 <= cfg["domain_id"] < cfg["num_domains"]:
        raise ModelError(f"{spec.option} {folder / CONFIG}: judge_id/domain_id out of range")
    return cfg


class UTMOS:
    def __init__(self, spec: Spec, device: str = "cpu") -> None:
        cfg = read_config(spec)
        folder = spec.path
        weights = [p for p in sorted((folder / SSL).iterdir()) if p.suffix in (".safetensors", ".bin")]
        if not weights:
            raise ModelError(f"{spec.option} {folder / SSL}: incomplete UTMOS folder: missing the wav2vec2 weights")
        self.sha256 = content_sha256([folder / CONFIG, folder / HEAD, folder / SSL / "config.json", *weights])
        self.name = f"utmos22-strong:{folder.name}@{self.sha256[:12]}"
        self.source = str(folder)
        enforce_offline()
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import Wav2Vec2Model

        try:
            self.ssl = Wav2Vec2Model.from_pretrained(str(folder / SSL), local_files_only=True).to(device).eval()
            self.head = build_head(cfg)
            self.head.load_state_dict(load_file(str(folder / HEAD)))
        except (OSError, ValueError, RuntimeError, SafetensorError) as e:
            raise ModelError(f"{spec.option} {folder}: UTMOS does not load: {first_line(e, 200)}") from None
        if self.ssl.config.hidden_size != cfg["ssl_dim"]:
            raise ModelError(f"{spec.option} {folder}: wav2vec2 width {self.ssl.config.hidden_size} != ssl_dim {cfg['ssl_dim']}")
        self.head.to(device).eval()
        self.device = device
        self._torch = torch

    def score(self, x16: np.ndarray) -> float:
        """Predicted MOS (1-5 scale) of 16 kHz audio."""
        torch = self._torch
        with torch.inference_mode():
            wav = torch.from_numpy(np.ascontiguousarray(x16, np.float32))[None].to(self.device)
            feats = self.ssl(wav).last_hidden_state
            return float(self.head(feats)[0])
