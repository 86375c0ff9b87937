"""Speaker embeddings from a local transformers WavLM x-vector folder
(`--speaker-encoder wavlm:DIR`, e.g. microsoft/wavlm-base-plus-sv saved with `save_pretrained`).

The folder holds `config.json` (a `WavLMForXVector` config), the weights (`model.safetensors`
or `pytorch_model.bin`, the latter read with the weights-only unpickler) and
`preprocessor_config.json` (the waveform normaliser). Embeddings are the L2-normalised
x-vectors (512-d for wavlm-base-plus-sv) of 16 kHz audio; windows as for the other encoders.
"""

from __future__ import annotations

import numpy as np

from clonebench.core.errors import ModelError, first_line
from clonebench.instruments.speakers import embed_with_windows, unit_rows

from .local import Spec, check_weights_only, content_sha256, enforce_offline, require

SR = 16000


class WavLMEncoder:
    def __init__(self, spec: Spec, device: str = "cpu") -> None:
        label = f"{spec.option} wavlm"
        folder = require(spec, ["config.json", "preprocessor_config.json"], "WavLM x-vector")
        weights = [p for p in (folder / "model.safetensors", folder / "pytorch_model.bin") if p.is_file()]
        if not weights:
            raise ModelError(f"{label}:{folder}: incomplete WavLM x-vector folder: missing model.safetensors")
        if weights[0].suffix == ".bin":
            check_weights_only(weights[0], label)
        self.sha256 = content_sha256([folder / "config.json", folder / "preprocessor_config.json", weights[0]])
        self.name = f"wavlm:{folder.name}@{self.sha256[:12]}"
        self.source = str(folder)
        enforce_offline()
        from transformers import AutoFeatureExtractor, WavLMForXVector

        try:
            self.features = AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
            self.model = WavLMForXVector.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise ModelError(f"{label}:{folder}: does not load: {first_line(e, 200)}") from None
        self.device = device

    def _encode(self, batch: list[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self.features(batch, sampling_rate=SR, padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).embeddings
        return unit_rows(out.cpu().numpy())

    def embedding(self, x: np.ndarray) -> np.ndarray:
        """The unit-length embedding of 16 kHz audio."""
        return self._encode([x])[0]

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clip embedding, embeddings of 1.6 s windows every 0.4 s)."""
        return embed_with_windows(self._encode, x)
