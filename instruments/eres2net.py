"""ERes2NetV2, the speaker-verification network GPT-SoVITS v2Pro/v2ProPlus condition on
(`--sv-model FILE` or CLONEBENCH_SV_MODEL; `--speaker-encoder eres2netv2:FILE` for vetting).

The file is the plain state dict upstream ships as `pretrained_eres2netv2w24s4ep4.ckpt`
(3D-Speaker's ERes2NetV2, base width 24, scale 4, expansion 4, 192-d embeddings). It is read
with torch's weights-only unpickler, and its sizes are read off its tensors, so a reduced model
(the parity fixture's) loads the same way.

Two outputs, for two jobs:
- `timbre(wav32)`: upstream's `compute_embedding3`, the 20480-d input of SoVITS v2Pro's
  `sv_emb`. The 32 kHz clip is resampled to 16 kHz with torchaudio's sinc resampler (as
  upstream's `Resample(32000, 16000)`), 80 Kaldi fbank bins (dither 0, no mean removal), and
  the last fused feature map averaged over time (`forward3`), not the pooled embedding.
- `embedding(wav16)`: the 192-d speaker-verification embedding (statistics pooling and the
  `seg_1` layer), on fbank with its mean over time removed, as 3D-Speaker's own inference does;
  unit length, like every other speaker encoder here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clonebench.core.errors import ModelError

SR = 16000
FBANK_BINS = 80
TIMBRE_SR = 32000


class _ReLU20(nn.Hardtanh):
    """3D-Speaker's ReLU: clipped at 20."""

    def __init__(self):
        super().__init__(0.0, 20.0)


class AFF(nn.Module):
    """Attentional feature fusion: a learned per-position mix of two feature maps."""

    def __init__(self, channels: int, r: int = 4):
        super().__init__()
        inner = channels // r
        self.local_att = nn.Sequential(
            nn.Conv2d(channels * 2, inner, 1), nn.BatchNorm2d(inner), nn.SiLU(),
            nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x, y):
        w = 1.0 + torch.tanh(self.local_att(torch.cat((x, y), dim=1)))
        return x * w + y * (2.0 - w)


class Block(nn.Module):
    """Res2Net-style bottleneck: the 1x1 output is cut into `scale` slices of `width` channels,
    each convolved after adding (or, `fuse`, AFF-mixing) the previous slice's output."""

    def __init__(self, cin: int, planes: int, stride: int, width: int, scale: int, expansion: int, fuse: bool):
        super().__init__()
        self.width, self.scale = width, scale
        self.conv1 = nn.Conv2d(cin, width * scale, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(scale))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale))
        if fuse:
            self.fuse_models = nn.ModuleList(AFF(width) for _ in range(scale - 1))
        self.fuse = fuse
        self.relu = _ReLU20()
        self.conv3 = nn.Conv2d(width * scale, planes * expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * expansion)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes * expansion:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes * expansion, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes * expansion))

    def forward(self, x):
        slices = torch.split(self.relu(self.bn1(self.conv1(x))), self.width, 1)
        outs = []
        for i in range(self.scale):
            if i == 0:
                sp = slices[0]
            else:
                sp = self.fuse_models[i - 1](sp, slices[i]) if self.fuse else sp + slices[i]
            sp = self.relu(self.bns[i](self.convs[i](sp)))
            outs.append(sp)
        out = self.bn3(self.conv3(torch.cat(outs, 1)))
        return self.relu(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """Four stages (the last two fuse with AFF), a strided shortcut from stage 3 fused into
    stage 4's output, then statistics pooling and one linear layer (`forward`), or the fused
    map averaged over time (`forward3`). State-dict names are 3D-Speaker's."""

    def __init__(self, m_channels: int = 64, num_blocks=(3, 4, 6, 3), widths=(24, 48, 96, 192), scale: int = 4,
                 expansion: int = 4, embedding_size: int = 192, feat_dim: int = FBANK_BINS):
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        cin = m_channels
        for i, (n, width) in enumerate(zip(num_blocks, widths)):
            planes, stride = m_channels * 2 ** i, 1 if i == 0 else 2
            blocks = []
            for k in range(n):
                blocks.append(Block(cin, planes, stride if k == 0 else 1, width, scale, expansion, fuse=i >= 2))
                cin = planes * expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        top = m_channels * 8 * expansion
        self.layer3_ds = nn.Conv2d(m_channels * 4 * expansion, top, 3, padding=1, stride=2, bias=False)
        self.fuse34 = AFF(top)
        stats = feat_dim // 8 * top
        self.seg_1 = nn.Linear(stats * 2, embedding_size)
        self.timbre_dim = stats

    def fused(self, feats: torch.Tensor) -> torch.Tensor:
        """fbank [B, T, 80] -> the fused stage-4 map [B, C, 80/8, T/8]."""
        x = F.relu(self.bn1(self.conv1(feats.transpose(1, 2)[:, None])))
        out3 = self.layer3(self.layer2(self.layer1(x)))
        return self.fuse34(self.layer4(out3), self.layer3_ds(out3))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """The speaker-verification embedding [B, embedding_size] (mean and std over time)."""
        x = self.fused(feats).flatten(1, 2)
        stats = torch.cat([x.mean(-1), torch.sqrt(torch.var(x, dim=-1) + 1e-8)], dim=1)
        return self.seg_1(stats)

    def forward3(self, feats: torch.Tensor) -> torch.Tensor:
        """Upstream GPT-SoVITS's timbre vector [B, C * 10]: the fused map's mean over time."""
        return self.fused(feats).flatten(1, 2).mean(-1)


def fbank(wav16: torch.Tensor) -> torch.Tensor:
    """80 Kaldi fbank bins of 16 kHz audio [B, samples] -> [B, frames, 80], dither 0."""
    from torchaudio.compliance import kaldi

    return torch.stack([kaldi.fbank(w[None], num_mel_bins=FBANK_BINS, sample_frequency=SR, dither=0) for w in wav16])


def _sizes(state: dict[str, torch.Tensor], where: str) -> dict:
    """The constructor's arguments, read off a state dict (a file of another network fails here)."""
    try:
        m = int(state["conv1.weight"].shape[0])
        blocks = [len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.") and k.endswith(".conv1.weight")})
                  for i in range(1, 5)]
        widths = [int(state[f"layer{i}.0.convs.0.weight"].shape[0]) for i in range(1, 5)]
        scale = len([k for k in state if k.startswith("layer1.0.convs.") and k.endswith(".weight")])
        expansion = int(state["layer1.0.conv3.weight"].shape[0]) // m
        embedding = int(state["seg_1.weight"].shape[0])
    except (KeyError, IndexError, AttributeError):
        raise ModelError(f"{where}: not an ERes2NetV2 state dict (expected conv1, layer1-4, fuse34 and seg_1 weights, "
                         "as in pretrained_eres2netv2w24s4ep4.ckpt)") from None
    if min(blocks) < 1 or scale < 2 or expansion < 1:
        raise ModelError(f"{where}: not an ERes2NetV2 state dict (stages of {blocks} blocks, scale {scale})")
    return {"m_channels": m, "num_blocks": tuple(blocks), "widths": tuple(widths), "scale": scale,
            "expansion": expansion, "embedding_size": embedding}



def timbre_cache(features: Path, model_name: str, clip_id: str) -> Path:
    """Where a clip's `timbre` vector under `model_name` is kept (`timbre_of_clip`)."""
    return Path(features) / ("timbre-" + model_name.replace(":", "-").replace("@", "-")) / f"{clip_id}.pt"


class ERes2NetV2Encoder:
    """A loaded ERes2NetV2 file: speaker embeddings for vetting and evaluation, and the timbre
    vector for SoVITS v2Pro/v2ProPlus."""

    kind = "eres2netv2"

    def __init__(self, path: Path, device: str = "cpu", label: str = "--sv-model") -> None:
        from clonebench.instruments.registry import sha256_file

        from .local import check_weights_only

        path = Path(path).expanduser()
        if path.is_dir():
            raise ModelError(f"{label} {path}: expected a file (ERes2NetV2 state dict), found a folder")
        if not path.is_file():
            raise ModelError(f"{label} {path}: no such file (upstream ships it as "
                             "GPT_SoVITS/pretrained_models/sv/pretrained_eres2netv2w24s4ep4.ckpt)")
        state = check_weights_only(path, label)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ModelError(f"{label} {path}: not an ERes2NetV2 state dict (holds a {type(state).__name__})")
        self.model = ERes2NetV2(**_sizes(state, f"{label} {path}"))
        own = self.model.state_dict()
        extra = sorted(set(state) - set(own))
        missing = sorted(set(own) - set(state))
        wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if extra or missing or wrong:
            first = (missing or extra or wrong)[0]
            raise ModelError(f"{label} {path}: weights do not fit ERes2NetV2 ({len(missing)} missing, "
                             f"{len(extra)} unexpected, {len(wrong)} wrong shape, e.g. {first})")
        self.model.load_state_dict(state)
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.path = path
        self.sha256 = sha256_file(path)
        self.name = f"eres2netv2:{path.stem}@{self.sha256[:12]}"
        self.source = str(path)

    @property
    def timbre_dim(self) -> int:
        return self.model.timbre_dim

    @torch.no_grad()
    def timbre(self, wav32: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Upstream's `compute_embedding3` of a 32 kHz clip: [timbre_dim] float32."""
        import torchaudio.functional as AF

        x = torch.as_tensor(np.asarray(wav32, dtype=np.float32) if not torch.is_tensor(wav32) else wav32).float()
        x16 = AF.resample(x.reshape(1, -1).to(self.device), TIMBRE_SR, SR)
        return self.model.forward3(fbank(x16))[0].float().cpu()

    def timbre_of_clip(self, path_32k: str | Path, features: Path, clip_id: str) -> torch.Tensor:
        """`timbre` of a clip's 32 kHz file, kept in `features/timbre-<model>/<clip id>.pt`, so that
        vetting (the timbre library) and training (each clip's vector) compute it once."""
        from clonebench.core.atomic import atomic_save
        from clonebench.core.audio import read_wav

        cached = timbre_cache(features, self.name, clip_id)
        if cached.is_file():
            return torch.load(cached, weights_only=True)
        vector = self.timbre(read_wav(Path(path_32k))[0])
        atomic_save(vector, cached)
        return vector

    @torch.no_grad()
    def _encode(self, batch: list[np.ndarray]) -> np.ndarray:
        from clonebench.instruments.speakers import unit_rows

        x = torch.from_numpy(np.stack(batch).astype(np.float32)).to(self.device)
        feats = fbank(x)
        feats = feats - feats.mean(dim=1, keepdim=True)
        return unit_rows(self.model(feats).cpu().numpy())

    def embedding(self, x: np.ndarray) -> np.ndarray:
        """The unit-length speaker embedding of 16 kHz audio."""
        return self._encode([x])[0]

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clip embedding, embeddings of 1.6 s windows every 0.4 s)."""
        from clonebench.instruments.speakers import embed_with_windows

        return embed_with_windows(self._encode, x)

