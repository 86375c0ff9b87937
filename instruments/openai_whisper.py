"""ASR from a local openai-whisper `.pt` checkpoint (`--asr openai-whisper:/path/large-v3.pt`).

The file is the layout `whisper.load_model` reads: a dict with `dims` and `model_state_dict`.
It is loaded with torch's weights-only unpickler, and only ever from the given path: a name
like `large-v3` is refused instead of being downloaded. When the file is one of OpenAI's
released checkpoints (its SHA-256 is part of the download address whisper knows), the
model's cross-attention alignment heads are set for word timestamps as whisper does for
downloads; for any other file whisper's default (the last half of the decoder layers) holds.

Decoding mirrors the embedded engine: beam 5, temperature fallback, no conditioning on
previous text, word timestamps; words map to the same store columns.
"""

from __future__ import annotations

import numpy as np

from clonebench.core.errors import ModelError, first_line
from clonebench.instruments.asr import Decoded, Transcriber, Word, whisper_language
from clonebench.instruments.registry import sha256_file

from .local import Spec, check_weights_only


def _released_name(sha: str) -> str | None:
    import whisper

    return next((name for name, url in whisper._MODELS.items() if sha in url), None)


class OpenAIWhisper(Transcriber):
    def __init__(self, spec: Spec, device: str = "cpu", beam_size: int = 5) -> None:
        import torch
        import whisper

        path = spec.path
        if path is None or not path.is_file():
            raise ModelError(f"{spec.option} openai-whisper:{path}: no such file (give the path of a .pt checkpoint)")
        check_weights_only(path, f"{spec.option} openai-whisper")
        self.sha256 = sha256_file(path)
        try:
            model = whisper.load_model(str(path), device=device)
        except (KeyError, TypeError, RuntimeError) as e:
            raise ModelError(f"{spec.option} openai-whisper:{path}: not a whisper checkpoint "
                             f"(needs 'dims' and 'model_state_dict'): {first_line(e, 160)}") from None
        released = _released_name(self.sha256)
        if released:
            model.set_alignment_heads(whisper._ALIGNMENT_HEADS[released])
        self.model = model.eval()
        self.device = device
        self.fp16 = device != "cpu" and torch.cuda.is_available()
        self.beam_size = beam_size
        self.label = f"openai-whisper:{released or path.name}@{self.sha256[:12]}"
        self.source = str(path)

    def producer(self, lang: str) -> str:
        return f"{self.label}:beam{self.beam_size}"

    def detect_language(self, x: np.ndarray) -> tuple[str, float]:
        import whisper

        if not self.model.is_multilingual:
            return "en", 1.0
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(x.astype(np.float32)), self.model.dims.n_mels)
        _, probs = self.model.detect_language(mel.to(self.model.device))
        lang = max(probs, key=probs.get)
        return lang, float(probs[lang])

    def _decode(self, audio: np.ndarray, lang: str) -> Decoded:
        import whisper

        language = whisper_language(lang, knows_cantonese=self.model.num_languages >= 100)
        if not self.model.is_multilingual and language not in (None, "en"):
            raise ModelError(f"{self.label} is an English-only model; it cannot transcribe --lang {lang}")
        kw = dict(language=language, beam_size=self.beam_size, word_timestamps=True,
                  condition_on_previous_text=False, fp16=self.fp16, verbose=None)
        try:
            result = whisper.transcribe(self.model, audio.astype(np.float32), **kw)
        except ValueError:
            # sampling at a fallback temperature met non-finite logits (torch refuses to sample
            # them): beam search alone never samples
            result = whisper.transcribe(self.model, audio.astype(np.float32), temperature=0.0, **kw)
        words = [Word(w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                 for seg in result["segments"] for w in seg.get("words", [])]
        prob = None
        if language is None:
            prob = self.detect_language(audio[: 30 * 16000])[1]
        return Decoded(words, result.get("language"), prob)
