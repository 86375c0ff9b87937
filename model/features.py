"""Content (SSL) features and BERT features for SoVITS and the GPT.

Content extractors turn 16 kHz audio into [dim, T] at 50 Hz (one frame per 320 samples):
- `whisper-base` (embedded default): the encoder of the Whisper-base CTranslate2 model from the
  registry, 512-d. It encodes 30 s windows; audio is cut into windows and the output trimmed.
- `cnhubert:<folder>`: a transformers HuBERT folder such as chinese-hubert-base, 768-d, the
  features upstream GPT-SoVITS is trained on (the waveform un-normalised, as upstream feeds it).
A checkpoint records its extractor and dimension; `check_compatible` refuses a mismatch.

BERT features: chinese-roberta-wwm-ext-large's hidden_states[-3] (1024-d) per character,
repeated onto phones by word2ph; zeros for non-Chinese runs or when no folder is given.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from clonebench.core.errors import ModelError, first_line

FRAME_SAMPLES = 320          # 16 kHz / 50 Hz
WINDOW_S = 30
BERT_DIM = 1024


class WhisperEncoderContent:
    name = "whisper-base"
    dim = 512

    def __init__(self, threads: int = 0):
        self.threads = threads

    @cached_property
    def _model(self):
        import ctranslate2

        from clonebench.instruments import registry
        from clonebench.instruments.onnx_session import cpu_threads

        return ctranslate2.models.Whisper(str(registry.whisper_base_dir()), device="cpu",
                                          compute_type="int8", intra_threads=self.threads or cpu_threads())

    @cached_property
    def _mel(self):
        from faster_whisper.feature_extractor import FeatureExtractor

        return FeatureExtractor(feature_size=80)

    def encode(self, wav16: np.ndarray) -> torch.Tensor:
        import ctranslate2

        frames = max(1, len(wav16) // FRAME_SAMPLES)
        window = WINDOW_S * 16000
        out = []
        for start in range(0, max(len(wav16), 1), window):
            chunk = np.zeros(window, dtype=np.float32)
            piece = wav16[start:start + window].astype(np.float32)
            chunk[:len(piece)] = piece
            mel = self._mel(chunk, padding=0)[:, :3000]
            enc = self._model.encode(ctranslate2.StorageView.from_array(mel[None].astype(np.float32)))
            out.append(torch.from_numpy(np.array(enc)[0]))           # [1500, 512]
        return torch.cat(out, dim=0)[:frames].T.contiguous().float()


class HubertContent:
    """A transformers HuBERT folder (config.json + weights), loaded with no network access."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if not (self.folder / "config.json").is_file():
            raise ModelError(f"{self.folder}: not a transformers HuBERT folder (no config.json)")
        from transformers import HubertModel

        try:
            self.model = HubertModel.from_pretrained(str(self.folder), local_files_only=True).eval()
        except Exception as e:
            raise ModelError(f"{self.folder}: HuBERT did not load ({first_line(e)})") from None
        self.dim = int(self.model.config.hidden_size)
        self.name = "cnhubert"

    @torch.no_grad()
    def encode(self, wav16: np.ndarray) -> torch.Tensor:
        """[dim, T] with the model's own frame count, (samples - 400) // 320 + 1. The waveform
        goes in as it is: upstream calls the HuBERT model directly, in training and inference,
        so it never applies the feature extractor's zero-mean/unit-variance normalisation,
        whatever `do_normalize` in preprocessor_config.json says. We do the same."""
        x = torch.from_numpy(np.asarray(wav16, dtype=np.float32))
        return self.model(x[None]).last_hidden_state[0].T.contiguous()


def content_extractor(spec: str = "whisper-base"):
    """'whisper-base' or 'cnhubert:<folder>'."""
    if spec == "whisper-base":
        return WhisperEncoderContent()
    kind, _, folder = spec.partition(":")
    if kind == "cnhubert" and folder:
        return HubertContent(Path(folder))
    raise ModelError(f"unknown content extractor {spec!r}: use whisper-base or cnhubert:/path/to/folder")


def check_compatible(extractor, ssl_extractor: str, ssl_dim: int, where: str) -> None:
    if extractor.name != ssl_extractor or extractor.dim != ssl_dim:
        raise ModelError(
            f"{where}: trained on {ssl_extractor} features ({ssl_dim}-d) but the extractor given is "
            f"{extractor.name} ({extractor.dim}-d): pass the matching extractor")


class BertFeatures:
    """chinese-roberta-wwm-ext-large (or any BERT-style folder with a tokenizer) from a local folder."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder else None
        self.model = self.tokenizer = None
        if self.folder is not None:
            from transformers import AutoModelForMaskedLM, AutoTokenizer

            try:
                self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
                self.model = AutoModelForMaskedLM.from_pretrained(str(self.folder), local_files_only=True).eval()
            except Exception as e:
                raise ModelError(f"{self.folder}: BERT did not load ({first_line(e)})") from None

    @torch.no_grad()
    def for_runs(self, runs) -> torch.Tensor:
        """[BERT_DIM, n_phones]: features for Chinese runs, zeros elsewhere."""
        parts = []
        for run in runs:
            n = len(run.phones)
            if run.lang == "zh" and self.model is not None:
                parts.append(self._chinese(run.text, run.word2ph))
            else:
                parts.append(torch.zeros(BERT_DIM, n))
        return torch.cat(parts, dim=1)

    def _chinese(self, text: str, word2ph: list[int]) -> torch.Tensor:
        enc = self.tokenizer(text, return_tensors="pt")
        hidden = self.model(**enc, output_hidden_states=True).hidden_states[-3][0][1:-1]   # drop CLS/SEP
        if hidden.shape[0] != len(word2ph):
            raise ModelError(f"BERT tokenized {text!r} into {hidden.shape[0]} pieces, expected one per character")
        if hidden.shape[1] != BERT_DIM:
            raise ModelError(f"{self.folder}: BERT hidden size is {hidden.shape[1]}; the GPT expects {BERT_DIM}")
        return hidden.repeat_interleave(torch.tensor(word2ph), dim=0).T      # [dim, n_phones]
