"""DNSMOS P.835 (SIG, BAK, OVRL) from the ONNX file in the `speechmos` wheel.

A noise-suppression-oriented MOS: BAK tracks background noise, SIG the speech itself.
The model takes exactly 9.01 s at 16 kHz. Shorter clips are repeated to fill the window (as
the reference implementation does); longer clips are scored on a window at the start and one
at the end, not every 1 s hop as the reference does, which would cost 6x on a 15 s clip.
"""

from __future__ import annotations

import numpy as np

from clonebench.instruments import registry

from .onnx_session import open_session

SR = 16000
WINDOW = int(9.01 * SR)
PRODUCER = f"dnsmos-p835 (speechmos=={registry.DNSMOS.version})"

# The published polynomial calibration of the raw network outputs (non-personalised model).
_CAL_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
_CAL_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
_CAL_OVR = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


class DNSMOS:
    def __init__(self) -> None:
        self.session = open_session(registry.verified_file(registry.DNSMOS, "dnsmos_models/sig_bak_ovr.onnx"))

    def windows(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            x = np.zeros(SR, np.float32)
        if len(x) < WINDOW:
            x = np.tile(x, int(np.ceil(WINDOW / len(x))))
        starts = sorted({0, len(x) - WINDOW})
        return np.stack([x[s : s + WINDOW] for s in starts]).astype(np.float32)

    def score(self, x: np.ndarray) -> dict[str, float]:
        raw = np.stack([self.session.run(None, {"input_1": w[None, :]})[0][0] for w in self.windows(x)])
        sig, bak, ovr = raw.mean(axis=0)
        return {"dnsmos_sig": float(_CAL_SIG(sig)), "dnsmos_bak": float(_CAL_BAK(bak)), "dnsmos_ovrl": float(_CAL_OVR(ovr))}
