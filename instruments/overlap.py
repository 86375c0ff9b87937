"""Frame-level overlapped-speech evidence from a local pyannote.audio segmentation model
(`--overlap pyannote:PATH`, PATH a `pytorch_model.bin` or the folder that holds it).

Works with both kinds of pyannote segmentation output:
- powerset (segmentation-3.0): the overlap probability of a frame is the total probability of
  the classes with two or more speakers;
- multi-label (segmentation 2.x): the second-highest speaker activation.

The clip is cut into chunks of the model's training duration, each chunk scored once (the
last one zero-padded and its frames cut back). The result is the per-frame probability, its
frame step, and the seconds and share of the clip above 0.5: vetting stores all of them and
the `multiple_speakers` rule reads `overlap_s`.

pyannote unpickles checkpoints with `weights_only=False`; the file is first read with torch's
weights-only unpickler, allowing only pyannote's task-specification classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clonebench.core.errors import ModelError, first_line
from clonebench.instruments.registry import sha256_file

from .local import Spec, check_weights_only, enforce_offline

SR = 16000
CHECKPOINT = "pytorch_model.bin"  # pyannote's file name inside a model folder
THRESHOLD = 0.5


@dataclass
class OverlapEvidence:
    probs: np.ndarray  # (frames,) overlap probability
    hop_s: float

    @property
    def overlap_s(self) -> float:
        return float((self.probs > THRESHOLD).sum() * self.hop_s)

    def metrics(self, duration_s: float) -> dict[str, float]:
        return {"overlap_s": self.overlap_s, "overlap_ratio": self.overlap_s / max(duration_s, 1e-9),
                "overlap_max_prob": float(self.probs.max()) if len(self.probs) else 0.0}


def _allowed_globals() -> tuple:
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from torch.torch_version import TorchVersion

    return (Specifications, Problem, Resolution, TorchVersion)


class PyannoteOverlap:
    def __init__(self, spec: Spec, device: str = "cpu") -> None:
        label = f"{spec.option} pyannote"
        path = spec.path
        if path is not None and path.is_dir():
            path = path / CHECKPOINT
        if path is None or not path.is_file():
            raise ModelError(f"{label}:{spec.path}: no {CHECKPOINT} there (give the file or its folder)")
        enforce_offline()
        import torch
        from pyannote.audio import Model

        check_weights_only(path, label, _allowed_globals())
        self.sha256 = sha256_file(path)
        self.name = f"pyannote:{Path(spec.path).name}@{self.sha256[:12]}"
        self.source = str(path)
        try:
            model = Model.from_pretrained(path, map_location=torch.device(device))
        except Exception as e:  # lightning and pyannote raise many types for a wrong file
            raise ModelError(f"{label}:{path}: does not load: {first_line(e, 200)}") from None
        if model is None:
            raise ModelError(f"{label}:{path}: does not load")
        self.model = model.eval()
        specs = model.specifications
        if isinstance(specs, tuple):
            raise ModelError(f"{label}:{path}: a multi-task model; give a segmentation model")
        self.chunk = int(specs.duration * SR)
        self.powerset = None
        if specs.powerset:
            from pyannote.audio.utils.powerset import Powerset

            mapping = Powerset(len(specs.classes), specs.powerset_max_classes).mapping
            self.powerset = (mapping.sum(dim=1) >= 2).float()  # classes with 2+ speakers

    def evidence(self, x: np.ndarray) -> OverlapEvidence:
        import torch

        n = max(1, int(np.ceil(len(x) / self.chunk)))
        padded = np.zeros(n * self.chunk, np.float32)
        padded[: len(x)] = x
        chunks = torch.from_numpy(padded.reshape(n, 1, self.chunk))
        with torch.inference_mode():
            out = self.model(chunks)  # (chunks, frames, classes)
        if self.powerset is not None:
            probs = out.exp() @ self.powerset  # the model outputs log-probabilities
        else:
            top2 = out.topk(2, dim=-1).values if out.shape[-1] >= 2 else torch.zeros_like(out)
            probs = top2[..., -1]
        hop_s = self.chunk / SR / out.shape[1]
        frames = probs.reshape(-1).cpu().numpy().astype(np.float32)
        return OverlapEvidence(frames[: int(np.ceil(len(x) / SR / hop_s))], hop_s)
