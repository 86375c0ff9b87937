"""Small random-weight models saved in each backend's own on-disk format.

Hubs cannot be reached from here, so the loading code of every backend is exercised (by the
tests and by `benchmarks/bench_backends.py`) on models built with the libraries' own classes
and saved the way their real releases are. Their outputs are meaningless; their shapes, their
files and the path through the loaders are real. Speed figures from them are labelled
random-weight figures.
"""

from __future__ import annotations

import json
from pathlib import Path

ECAPA_HPARAMS = """\
# spkrec-ecapa-voxceleb layout, small channels (random weights)
pretrained_path: speechbrain/spkrec-ecapa-voxceleb
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [{c}, {c}, {c}, {c}, {c3}]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 32
    lin_neurons: 192
classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 192
    out_neurons: 4
mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


def ecapa_folder(out: Path, channels: int = 64, seed: int = 0) -> Path:
    """A `spkrec-ecapa-voxceleb`-style folder with a randomly initialised ECAPA-TDNN
    (channels=1024 is the released model's size)."""
    import torch
    from speechbrain.dataio.encoder import CategoricalEncoder
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN, Classifier

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = ECAPA_TDNN(80, channels=[channels] * 4 + [3 * channels], kernel_sizes=[5, 3, 3, 3, 1],
                       dilations=[1, 2, 3, 4, 1], attention_channels=32, lin_neurons=192)
    torch.save(model.state_dict(), out / "embedding_model.ckpt")
    torch.save(Classifier(192, out_neurons=4).state_dict(), out / "classifier.ckpt")
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(["spk0", "spk1", "spk2", "spk3"])
    encoder.save(out / "label_encoder.txt")
    (out / "hyperparams.yaml").write_text(ECAPA_HPARAMS.format(c=channels, c3=3 * channels), encoding="utf-8")
    return out


WHISPER_SIZES = {"toy": (64, 2, 2), "base": (512, 8, 6), "small": (768, 12, 12)}  # width, heads, layers


def whisper_pt(out: Path, size: str = "toy", seed: int = 0) -> Path:
    """An openai-whisper `.pt` checkpoint (`dims` + `model_state_dict`) of a multilingual model:
    `toy` for tests, or the real `base`/`small` dimensions for speed figures."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(seed)
    width, heads, layers = WHISPER_SIZES[size]
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=width, n_audio_head=heads, n_audio_layer=layers,
                           n_vocab=51865, n_text_ctx=448, n_text_state=width, n_text_head=heads, n_text_layer=layers)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).state_dict()}, out)
    return out


def utmos_folder(out: Path, real_size: bool = False, seed: int = 0) -> Path:
    """A UTMOS folder (see `instruments.utmos`) with random weights: small, or (`real_size`) with
    wav2vec 2.0 base and UTMOS22-strong's head dimensions."""
    import torch
    from safetensors.torch import save_file
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from clonebench.instruments.utmos import CONFIG, DEFAULTS, HEAD, SSL, build_head

    torch.manual_seed(seed)
    if real_size:
        cfg, ssl_config = dict(DEFAULTS), Wav2Vec2Config()   # transformers' defaults are wav2vec 2.0 base
    else:
        width = 64
        cfg = {**DEFAULTS, "ssl_dim": width, "num_judges": 300, "domain_dim": 16, "judge_dim": 16,
               "lstm_hidden": 32, "proj_hidden": 64, "judge_id": 288}
        ssl_config = Wav2Vec2Config(hidden_size=width, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=2 * width, conv_dim=(32,) * 7, num_conv_pos_embeddings=16)
    ssl = Wav2Vec2Model(ssl_config)
    ssl.save_pretrained(out / SSL)
    save_file({k: v.contiguous() for k, v in build_head(cfg).state_dict().items()}, str(out / HEAD))
    (out / CONFIG).write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    return out


def pyannote_checkpoint(out: Path, real_size: bool = False, seed: int = 0) -> Path:
    """A pyannote segmentation checkpoint (`pytorch_model.bin` in a folder): a PyanNet with
    segmentation-3.0's task (powerset over 3 speakers, at most 2 at once, 10 s chunks), saved as
    a Lightning checkpoint with pyannote's own `on_save_checkpoint` metadata. Small, or
    (`real_size`) with segmentation-3.0's LSTM (4 x 128, bidirectional) and linear (2 x 128) sizes."""
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(seed)
    hidden, layers = (128, 4) if real_size else (32, 1)
    model = PyanNet(sincnet={"stride": 10}, lstm={"hidden_size": hidden, "num_layers": layers, "bidirectional": True,
                                                  "monolithic": True},
                    linear={"hidden_size": hidden, "num_layers": 2 if real_size else 1}, sample_rate=16000, num_channels=1)
    model.specifications = Specifications(problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME,
                                          duration=10.0, classes=["speaker#1", "speaker#2", "speaker#3"],
                                          powerset_max_classes=2, permutation_invariant=True)
    model.build()
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": "2.6.6"}
    model.on_save_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out / "pytorch_model.bin")
    return out


def wavlm_folder(out: Path, real_size: bool = False, seed: int = 0) -> Path:
    """A WavLM x-vector folder (`save_pretrained` layout) with random weights: small, or
    (`real_size`) with wavlm-base-plus-sv's dimensions."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(seed)
    if real_size:
        config = WavLMConfig(num_labels=2)   # transformers' defaults are WavLM base
    else:
        config = WavLMConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                             conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_buckets=32, tdnn_dim=(64,) * 5,
                             xvector_output_dim=512)
    WavLMForXVector(config).save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(out)
    return out


def eres2netv2_file(out: Path, wide: bool = True, seed: int = 0) -> Path:
    """An ERes2NetV2 state dict as upstream ships `pretrained_eres2netv2w24s4ep4.ckpt`, random
    weights, one block per stage. `wide` keeps the real 64 channels x expansion 4, so its timbre
    vector is 20480-d as a v2Pro SoVITS needs (about 26 M parameters, saved in fp16: 50 MB);
    otherwise 8 channels (2560-d), for the speaker-encoder paths."""
    import torch

    from clonebench.instruments.eres2net import ERes2NetV2

    torch.manual_seed(seed)
    m = 64 if wide else 8
    # narrow slices (the fused stages' attention needs 4 channels or more): cheap at any width
    model = ERes2NetV2(m_channels=m, num_blocks=(1, 1, 1, 1), widths=(4, 4, 8, 8), scale=2, expansion=4,
                       embedding_size=32)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_var.uniform_(0.5, 1.5)
                mod.running_mean.uniform_(-0.1, 0.1)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    return path


def fill_posterior_(sovits, seed: int = 0) -> None:
    """Fixed values for a SoVITS posterior encoder (`enc_q`, which inference files leave out),
    a function of the seed, the names and the shapes only: upstream's module and ours, filled
    by this, hold the same weights (the parity fixtures' training pass relies on it)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in sorted(sovits.enc_q.state_dict(keep_vars=True).items()):
            if not t.is_floating_point():
                continue
            levels = torch.randint(0, 2, t.shape, generator=g) * 2 - 1
            if not name.endswith("weight_v"):
                levels = levels * torch.randint(0, 2, t.shape, generator=g)
            fan_in = t[0].numel() if t.dim() > 1 else 4
            t.copy_((levels * fan_in ** -0.5).half().float())
