"""Speaker embeddings from a local speechbrain ECAPA-TDNN folder (`--speaker-encoder ecapa:DIR`).

The folder has the layout of speechbrain's `spkrec-ecapa-voxceleb`: `hyperparams.yaml` and
the files its pretrainer names (`embedding_model.ckpt`, usually also `mean_var_norm_emb.ckpt`,
`classifier.ckpt`, `label_encoder.txt`). It loads through
`EncoderClassifier.from_hparams(source=DIR)` with `pretrained_path` pointed at the folder, so
the hub address written in the file is never used.

HyperPyYAML builds whatever object a tag names (`!new:os.system` would run a command), so the
file is read first and every `!new:`/`!name:`/`!apply:` tag must name a class under the
prefixes in `ALLOWED_TAG_PREFIXES`. Every `.ckpt` must unpickle with torch's weights-only
unpickler. Embeddings are the 192-d (for VoxCeleb ECAPA) L2-normalised x-vectors of 16 kHz audio.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from clonebench.core.config import model_cache_dir
from clonebench.core.errors import ModelError, first_line
from clonebench.instruments.speakers import embed_with_windows, unit_rows

from .local import Spec, check_weights_only, content_sha256, enforce_offline, require

HPARAMS = "hyperparams.yaml"
ALLOWED_TAG_PREFIXES = (
    "speechbrain.lobes.", "speechbrain.processing.", "speechbrain.nnet.", "speechbrain.dataio.encoder.",
    "speechbrain.utils.parameter_transfer.", "torch.nn.",
)


def _pretrainer_files(text: str) -> list[str]:
    """Files the pretrainer loads from `<pretrained_path>/NAME`."""
    return sorted(set(re.findall(r"<pretrained_path>/([\w.\-]+)", text)))


def check_hparams(path: Path, label: str) -> list[str]:
    """Refuse tags outside the allow-list; return the files the pretrainer needs."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"{label}: {path}: unreadable: {e}") from None
    for n, line in enumerate(text.splitlines(), 1):
        for tag in re.findall(r"!(?:new|name|apply|module):([\w.]+)", line):
            if not tag.startswith(ALLOWED_TAG_PREFIXES):
                raise ModelError(f"{label}: {path}:{n}: refused: it asks to build {tag}; only speechbrain model classes may be named")
    return _pretrainer_files(text)


class EcapaEncoder:
    def __init__(self, spec: Spec, device: str = "cpu") -> None:
        label = f"{spec.option} ecapa"
        folder = require(spec, [HPARAMS], "speechbrain ECAPA")
        needed = check_hparams(folder / HPARAMS, label)
        if "embedding_model.ckpt" not in needed:
            raise ModelError(f"{label}:{folder}: {HPARAMS} has no pretrainer path for embedding_model.ckpt")
        require(spec, needed, "speechbrain ECAPA")
        for name in needed:
            if name.endswith(".ckpt"):
                check_weights_only(folder / name, label)
        files = [folder / HPARAMS, *(folder / n for n in needed)]
        self.sha256 = content_sha256(files)
        self.name = f"ecapa:{folder.name}@{self.sha256[:12]}"
        self.source = str(folder)
        self.device = device
        enforce_offline()
        from speechbrain.inference.speaker import EncoderClassifier
        from speechbrain.utils.fetching import LocalStrategy

        try:
            self.model = EncoderClassifier.from_hparams(
                source=str(folder), savedir=str(model_cache_dir() / "speechbrain" / self.sha256[:16]),
                overrides={"pretrained_path": str(folder)}, run_opts={"device": device},
                local_strategy=LocalStrategy.COPY,
            )
        except Exception as e:  # speechbrain raises many types for a bad folder; one line each
            raise ModelError(f"{label}:{folder}: does not load: {first_line(e, 200)}") from None
        self.model.eval()

    def _encode(self, batch: list[np.ndarray]) -> np.ndarray:
        """Unit embeddings of equally long 16 kHz arrays (a clip, or its windows)."""
        import torch

        with torch.inference_mode():
            out = self.model.encode_batch(torch.from_numpy(np.stack(batch).astype(np.float32)))
        return unit_rows(out.reshape(len(batch), -1).cpu().numpy())

    def embedding(self, x: np.ndarray) -> np.ndarray:
        """The unit-length embedding of 16 kHz audio."""
        return self._encode([x])[0]

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clip embedding, embeddings of 1.6 s windows every 0.4 s)."""
        return embed_with_windows(self._encode, x)
