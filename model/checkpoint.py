"""GPT-SoVITS v2 inference files and our native training checkpoint, loaded without running pickled code.

File formats (facts about upstream GPT-SoVITS v2; tests/fixtures/parity holds files its own code wrote):
- GPT `.ckpt`: {"weight": {"model.<key>": fp16}, "config": {...s1 yaml...}, "info": "GPT-e<N>"}
- SoVITS `.pth`: {"weight": {<key>: fp16, no enc_q.*}, "config": hps, "info": "<E>epoch_<S>iteration"}.
  Upstream pickles `hps` as a `utils.HParams` object. We load every file with torch's
  weights-only unpickler; the only class it may build beyond plain data is our stand-in for
  `utils.HParams`, which turns into a plain dict. Anything else (a crafted `__reduce__`, an
  unknown class) is refused before it runs. We write `config` as plain nested dicts, which
  upstream's inference code also accepts.
- The first two bytes of a SoVITS file are the zip magic `PK` (v1/v2 told apart by the text
  embedding: 322 vs 732 symbols), or a version tag upstream writes over it: 00 v1, 01 v2,
  02 v3, 03 v3 LoRA, 04 v4 LoRA, 05 v2Pro, 06 v2ProPlus. v2 (with our own `sv_emb`
  extension), v2Pro and v2ProPlus are read and written (the Pro files with their tag, as
  upstream's `savee(..., model_version=)` writes them); v1, v3 and v4 are refused by name.
- The GPT file is the same for every version: v2Pro/v2ProPlus ship with `s1v3.ckpt`, whose
  layout (keys, shapes, config) is v2's s1; upstream loads it with the same code.
"""

from __future__ import annotations

import io
import pickle
import re
from dataclasses import asdict
from pathlib import Path

import torch

from clonebench.core.atomic import atomic_save
from clonebench.core.errors import UserError, first_line

from .config import PRO_VERSIONS, GPTConfig, SoVITSConfig, from_mapping

NATIVE_FORMAT = "clonebench-native"
NATIVE_VERSION = 1

VERSION_TAGS = {b"00": "v1", b"01": "v2", b"02": "v3", b"03": "v3 (LoRA)", b"04": "v4 (LoRA)",
                b"05": "v2Pro", b"06": "v2ProPlus"}
VERSION_BYTES = {"v2Pro": b"05", "v2ProPlus": b"06"}
SYMBOLS_TO_VERSION = {322: "v1", 732: "v2"}
SUPPORTED = "v2, v2Pro and v2ProPlus are supported"
PRO_KEYS = ("sv_emb.weight", "prelu.weight", "ge_to512.weight")
# the first upsampling kernel tells the two Pro vocoders apart (s2v2Pro.json 16, s2v2ProPlus.json 20)
PRO_FIRST_KERNEL = {"v2Pro": 16, "v2ProPlus": 20}


class CheckpointError(UserError):
    """A file that is not a usable checkpoint (wrong kind, unsupported version, unsafe pickle)."""


class HParams:
    """Stand-in for upstream's `utils.HParams`: unpickles into attributes we turn into a dict."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {})


def _plain(value):
    """HParams (possibly nested) -> plain dicts; everything else unchanged."""
    if isinstance(value, HParams):
        value = value.__dict__
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


# -- reading ---------------------------------------------------------------------------------

def read_version_tag(path: Path) -> str | None:
    """None for a plain zip file (`PK`), else the version named by upstream's 2-byte tag."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4:
        raise CheckpointError(f"{path}: empty or truncated file ({len(head)} bytes)")
    head = head[:2]
    if head == b"PK":
        return None
    if head in VERSION_TAGS:
        return VERSION_TAGS[head]
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (starts with {head!r})")


def safe_load(path: Path) -> dict:
    """torch.load with the weights-only unpickler; `utils.HParams` becomes a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    data = path.read_bytes()
    if len(data) < 4:
        raise CheckpointError(f"{path}: empty or truncated file ({len(data)} bytes)")
    if data[:2] in VERSION_TAGS:
        data = b"PK" + data[2:]   # upstream overwrote the zip magic with a version tag
    try:
        with torch.serialization.safe_globals([(HParams, "utils.HParams")]):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        global_name = re.search(r"GLOBAL ([\w.]+)", str(e))
        if global_name:
            raise CheckpointError(
                f"{path}: refused: its pickle asks for {global_name.group(1)}, which a checkpoint "
                "never needs (it may try to run code); nothing from it was executed") from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(e)})") from None
    except Exception as e:  # zip errors, truncated archives, random bytes
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(e)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(obj).__name__}, not a dict)")
    return _plain(obj)


def _state_dict(path: Path, obj: dict) -> dict[str, torch.Tensor]:
    weight = obj.get("weight")
    if not isinstance(weight, dict) or not weight or not all(isinstance(v, torch.Tensor) for v in weight.values()):
        raise CheckpointError(f"{path}: no 'weight' state dict: not a GPT-SoVITS inference file")
    return weight


def load_sovits(path: Path) -> tuple[SoVITSConfig, dict[str, torch.Tensor], dict]:
    """-> (config, state dict without enc_q, the file's raw config mapping)."""
    path = Path(path)
    tag = read_version_tag(path)
    if tag is not None and tag != "v2" and tag not in PRO_VERSIONS:
        raise CheckpointError(f"{path}: GPT-SoVITS {tag} SoVITS file: {SUPPORTED}")
    obj = safe_load(path)
    weight = _state_dict(path, obj)
    emb = weight.get("enc_p.text_embedding.weight")
    if emb is None:
        raise CheckpointError(f"{path}: no enc_p.text_embedding.weight: not a SoVITS file "
                              "(a GPT .ckpt given as --sovits?)")
    version = SYMBOLS_TO_VERSION.get(int(emb.shape[0]))
    if version != "v2":
        raise CheckpointError(f"{path}: GPT-SoVITS {version or 'unknown'} SoVITS file "
                              f"({emb.shape[0]} text symbols): {SUPPORTED} (732 symbols)")
    raw = obj.get("config") or {}
    config = sovits_config_from_file(raw, weight, tag or "v2")
    check_version(path, config, weight, tag)
    return config, weight, raw


def check_version(path: Path, config: SoVITSConfig, weight: dict[str, torch.Tensor], tag: str | None) -> None:
    """The file's tag, its config and its weights must tell one story."""
    if (tag in PRO_VERSIONS) != config.is_pro or (tag in PRO_VERSIONS and tag != config.version):
        raise CheckpointError(f"{path}: tagged {tag or 'v2'} but its config says {config.version}")
    if not config.is_pro:
        return
    missing = [k for k in PRO_KEYS if k not in weight]
    if missing:
        raise CheckpointError(f"{path}: a {config.version} file without {', '.join(missing)}: "
                              "truncated, or a v2 file with a Pro tag")
    first = weight.get("dec.ups.0.weight_v")
    kernel, wanted = (int(first.shape[2]) if first is not None else None), PRO_FIRST_KERNEL[config.version]
    if kernel is not None and kernel != wanted:
        other = {k: v for v, k in PRO_FIRST_KERNEL.items()}.get(kernel, "another model")
        raise CheckpointError(f"{path}: tagged {config.version} but its vocoder has {other}'s shapes "
                              f"(first upsampling kernel {kernel}, not {wanted})")


def sovits_config_from_file(raw: dict, weight: dict[str, torch.Tensor], tag: str = "v2") -> SoVITSConfig:
    """Our own files carry the full config under 'clonebench'; upstream files are read from hps.model
    (their version from the file's tag, as upstream's loader reads it)."""
    if isinstance(raw.get("clonebench"), dict):
        return from_mapping(SoVITSConfig, raw["clonebench"])
    model = dict(raw.get("model") or {})
    model.pop("version", None)
    config = from_mapping(SoVITSConfig, model)
    config.version = tag
    config.n_symbols = int(weight["enc_p.text_embedding.weight"].shape[0])
    config.ssl_extractor = raw.get("content_module", "cnhubert")
    config.ssl_dim = int(weight["ssl_proj.weight"].shape[1])
    config.content_dim = int(weight["ssl_proj.weight"].shape[0])
    if raw.get("train", {}).get("segment_size"):
        config.segment_size = int(raw["train"]["segment_size"])
    # sizes upstream's hps does not spell out, read off the weights
    config.style_hidden = int(weight["ref_enc.spectral.0.fc.weight"].shape[0])
    config.n_flows = sum(1 for k in weight if k.startswith("flow.flows.") and k.endswith(".pre.weight"))
    config.flow_layers = sum(1 for k in weight if k.startswith("flow.flows.0.enc.in_layers.") and k.endswith(".bias"))
    if "sv_emb.weight" in weight:
        config.sv_dim = int(weight["sv_emb.weight"].shape[1])
    mrte = weight.get("enc_p.mrte.c_pre.weight")
    if mrte is not None and int(mrte.shape[0]) != config.gin_channels:
        config.mrte_hidden = int(mrte.shape[0])
    if config.is_pro:
        config.sv_encoder = "eres2netv2"
    return config


def load_gpt(path: Path) -> tuple[GPTConfig, dict[str, torch.Tensor], dict]:
    """-> (config, state dict without the 'model.' prefix, the file's raw config mapping)."""
    path = Path(path)
    obj = safe_load(path)
    weight = _state_dict(path, obj)
    if not any(k.startswith("model.") for k in weight):
        raise CheckpointError(f"{path}: no 'model.*' weights: not a GPT .ckpt "
                              "(a SoVITS .pth given as --gpt?)")
    raw = obj.get("config") or {}
    model = dict(raw.get("model") or {})
    if isinstance(raw.get("clonebench"), dict):
        model.update(raw["clonebench"])
    config = from_mapping(GPTConfig, model)
    if "max_sec" in (raw.get("data") or {}):
        config.max_sec = int(raw["data"]["max_sec"])
    state = {k[len("model."):]: v for k, v in weight.items() if k.startswith("model.")}
    # upstream sizes the feed-forward layers 4 x hidden_dim whatever `linear_units` says: read the weights
    if "h.layers.0.linear1.weight" in state:
        config.linear_units = int(state["h.layers.0.linear1.weight"].shape[0])
    return config, state, raw


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path,
              ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Copy weights with a clear message on any key or shape difference."""
    own = module.state_dict()
    wanted = {k for k in own if not k.startswith(ignore_prefixes)}
    missing, unexpected = sorted(wanted - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in wanted & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise CheckpointError(f"{path}: weights do not fit this model: {', '.join(parts)}")
    with torch.no_grad():
        for k in wanted:
            own[k].copy_(state[k].to(own[k].dtype))


# -- writing ---------------------------------------------------------------------------------

def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).contiguous().clone() for k, v in state.items()}


def sovits_file_config(config: SoVITSConfig) -> dict:
    """Upstream's s2.json layout (which its inference reads) plus our full config."""
    c = asdict(config)
    return {
        "train": {"segment_size": config.segment_size, "c_mel": 45, "c_kl": 1.0,
                  "learning_rate": 1e-4, "betas": [0.8, 0.99], "eps": 1e-9, "lr_decay": 0.999875,
                  "text_low_lr_rate": 0.4},
        "data": {"max_wav_value": 32768.0, "sampling_rate": 32000, "filter_length": 2048,
                 "hop_length": 640, "win_length": 2048, "n_mel_channels": 128, "mel_fmin": 0.0,
                 "mel_fmax": None, "add_blank": True, "n_speakers": 300, "cleaned_text": True},
        "model": {k: c[k] for k in (
            "inter_channels", "hidden_channels", "filter_channels", "n_heads", "n_layers",
            "kernel_size", "p_dropout", "resblock_kernel_sizes", "resblock_dilation_sizes",
            "upsample_rates", "upsample_initial_channel", "upsample_kernel_sizes", "gin_channels")}
        | {"resblock": "1", "n_layers_q": 3, "use_spectral_norm": False,
           "semantic_frame_rate": "25hz", "freeze_quantizer": True, "version": config.version},
        "content_module": config.ssl_extractor,
        "clonebench": c,
    }


def save_sovits(path: Path, model: torch.nn.Module, config: SoVITSConfig, epoch: int = 0, step: int = 0) -> None:
    """Upstream's inference layout; a v2Pro/v2ProPlus file starts with its version tag, as upstream
    writes it, so upstream's WebUI and the engines that read the tag know it."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("enc_q.")}
    atomic_save({"weight": _half(state), "config": sovits_file_config(config),
                 "info": f"{epoch}epoch_{step}iteration"}, path, tag=VERSION_BYTES.get(config.version))


def gpt_file_config(config: GPTConfig) -> dict:
    c = asdict(config)
    return {
        "train": {"seed": 1234, "epochs": 20, "batch_size": 8, "precision": "16-mixed", "gradient_clip": 1.0},
        "optimizer": {"lr": 0.01, "lr_init": 1e-5, "lr_end": 1e-4, "warmup_steps": 2000, "decay_steps": 40000},
        "data": {"max_sec": config.max_sec, "pad_val": config.EOS},
        "model": {k: c[k] for k in ("vocab_size", "phoneme_vocab_size", "embedding_dim", "hidden_dim",
                                    "head", "linear_units", "n_layer", "dropout", "EOS")} | {"random_bert": 0},
        "inference": {"top_k": 15},
        "clonebench": c,
    }


def save_gpt(path: Path, model: torch.nn.Module, config: GPTConfig, epoch: int = 0) -> None:
    state = {"model." + k: v for k, v in model.state_dict().items()}
    atomic_save({"weight": _half(state), "config": gpt_file_config(config), "info": f"GPT-e{epoch}"}, path)


# -- native checkpoint (training state + provenance) -------------------------------------------

def save_native(path: Path, *, sovits: torch.nn.Module | None, gpt: torch.nn.Module | None,
                sovits_config: SoVITSConfig, gpt_config: GPTConfig, training: dict) -> None:
    """Everything needed to resume and to say where a model came from, in fp32.

    `training` holds plain data and tensors only: stage, step, epoch, optimizer and scheduler
    state dicts, RNG states, the data-manifest hash, the seed.
    """
    atomic_save({
        "format": NATIVE_FORMAT, "format_version": NATIVE_VERSION,
        "sovits": sovits.state_dict() if sovits is not None else None,
        "gpt": gpt.state_dict() if gpt is not None else None,
        "sovits_config": asdict(sovits_config), "gpt_config": asdict(gpt_config),
        "training": training,
    }, path)


def load_native(path: Path) -> dict:
    obj = safe_load(Path(path))
    if obj.get("format") != NATIVE_FORMAT:
        raise CheckpointError(f"{path}: not a clonebench native checkpoint")
    if obj.get("format_version", 0) > NATIVE_VERSION:
        raise CheckpointError(f"{path}: written by a newer clonebench (format {obj['format_version']})")
    obj["sovits_config"] = from_mapping(SoVITSConfig, obj["sovits_config"])
    obj["gpt_config"] = from_mapping(GPTConfig, obj["gpt_config"])
    return obj
