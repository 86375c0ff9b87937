"""Silero VAD (the ONNX model in the `silero-vad` wheel), run frame by frame at 16 kHz."""

from __future__ import annotations

import numpy as np

from clonebench.instruments import registry

from .onnx_session import open_session

SR = 16000
CHUNK = 512  # 32 ms per decision
CONTEXT = 64  # samples of the previous chunk the model expects in front of each chunk
FRAME_S = CHUNK / SR
PRODUCER = f"silero-vad=={registry.SILERO_VAD.version}"


class SileroVAD:
    def __init__(self) -> None:
        self.session = open_session(registry.verified_file(registry.SILERO_VAD, "data/silero_vad.onnx"))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Speech probability per 32 ms frame."""
        n = int(np.ceil(len(x) / CHUNK))
        x = np.pad(x.astype(np.float32), (CONTEXT, n * CHUNK - len(x)))
        state = np.zeros((2, 1, 128), np.float32)
        sr = np.array(SR, dtype=np.int64)
        probs = np.empty(n, np.float32)
        for i in range(n):
            chunk = x[i * CHUNK : i * CHUNK + CHUNK + CONTEXT][None, :]
            out, state = self.session.run(None, {"input": chunk, "state": state, "sr": sr})
            probs[i] = out[0, 0]
        return probs


def speech_mask(probs: np.ndarray, on: float = 0.5, off: float = 0.35, hangover_frames: int = 3) -> np.ndarray:
    """Hysteresis on the frame probabilities, with a short hangover so word gaps stay speech."""
    mask = np.zeros(len(probs), bool)
    active, quiet = False, 0
    for i, p in enumerate(probs):
        if p >= on:
            active, quiet = True, 0
        elif active and p < off:
            quiet += 1
            if quiet > hangover_frames:
                active = False
        mask[i] = active
    return mask
