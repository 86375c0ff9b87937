"""Model sizes as dataclasses, the presets (`tiny`, `v2`, `v2pro`, `v2proplus`), and the
mapping to upstream configs.

A checkpoint carries its config, so a file is self-describing. The SoVITS config also records
which content (SSL) extractor and which speaker encoder (for `sv_emb`) it was trained with.

Versions (upstream's names): `v2`, and `v2Pro`/`v2ProPlus`, where a 20480-d ERes2NetV2 timbre
vector is projected by `sv_emb` and added to the style vector, which then passes a PReLU; the
text encoder's MRTE reads it through `ge_to512`. v2ProPlus is v2Pro with a wider vocoder.
Our own v2 extension (a Resemblyzer embedding through a zero-initialised `sv_emb`, no PReLU)
stays `v2`: its files differ from upstream's v2 only by the `sv_emb` keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from clonebench.core.errors import UserError

SAMPLE_RATE = 32000
HOP = 640          # 50 spectrogram frames per second at 32 kHz
N_FFT = 2048
N_MELS = 128
SEMANTIC_HZ = 25   # semantic tokens per second; each covers 2 spectrogram frames
PRO_VERSIONS = ("v2Pro", "v2ProPlus")
VERSIONS = ("v2", *PRO_VERSIONS)
TIMBRE_DIM = 20480  # ERes2NetV2's forward3 output, which v2Pro's sv_emb reads


@dataclass
class SoVITSConfig:
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)
    upsample_rates: list[int] = field(default_factory=lambda: [10, 8, 2, 2, 2])
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 8, 2, 2])
    gin_channels: int = 512
    n_symbols: int = 732
    # content features: which extractor, its dimension, and the quantizer's working dimension
    ssl_extractor: str = "cnhubert"
    ssl_dim: int = 768
    content_dim: int = 768
    codebook_size: int = 1024
    ref_bins: int = 704          # MelStyleEncoder reads the first 704 of 1025 linear bins
    style_hidden: int = 128
    mrte_heads: int = 4
    flow_layers: int = 4
    n_flows: int = 4
    posterior_layers: int = 16
    segment_size: int = 20480    # samples per training slice (32 frames)
    disc_narrow: int = 1         # training only: divides the discriminator's channel counts
    # speaker-embedding conditioning beyond v2: 0 switches it off (then the state dict is v2's)
    sv_dim: int = 0
    sv_encoder: str = ""
    version: str = "v2"          # v2, v2Pro or v2ProPlus (upstream's names; see the module doc)
    mrte_hidden: int = 0         # MRTE's width; 0: gin_channels (v2, where upstream has both at 512)

    @property
    def spec_channels(self) -> int:
        return N_FFT // 2 + 1

    @property
    def is_pro(self) -> bool:
        return self.version in PRO_VERSIONS

    @property
    def text_style_dim(self) -> int:
        """The style vector's width where the text encoder reads it (through `ge_to512` on v2Pro)."""
        return self.mrte_hidden or self.gin_channels


@dataclass
class GPTConfig:
    embedding_dim: int = 512
    hidden_dim: int = 512
    head: int = 16
    n_layer: int = 24
    linear_units: int = 2048
    vocab_size: int = 1025
    phoneme_vocab_size: int = 732
    EOS: int = 1024
    dropout: float = 0.0
    bert_dim: int = 1024
    max_sec: int = 54


_PRO = {"gin_channels": 1024, "mrte_hidden": 512, "p_dropout": 0.0, "sv_dim": TIMBRE_DIM, "sv_encoder": "eres2netv2"}

PRESETS: dict[str, tuple[SoVITSConfig, GPTConfig]] = {
    "v2": (SoVITSConfig(), GPTConfig()),
    # upstream's s2v2Pro.json / s2v2ProPlus.json; the GPT is s1v3's, whose layout is v2's s1
    "v2pro": (SoVITSConfig(version="v2Pro", **_PRO), GPTConfig()),
    "v2proplus": (SoVITSConfig(version="v2ProPlus", upsample_initial_channel=768,
                               upsample_kernel_sizes=[20, 16, 8, 2, 2], **_PRO), GPTConfig()),
    "tiny": (
        SoVITSConfig(inter_channels=64, hidden_channels=64, filter_channels=128, n_layers=2,
                     resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                     upsample_initial_channel=64, gin_channels=64, ssl_extractor="whisper-base", ssl_dim=512,
                     content_dim=64,
                     style_hidden=32, flow_layers=2, n_flows=2, posterior_layers=4, disc_narrow=4),
        GPTConfig(embedding_dim=128, hidden_dim=128, head=4, n_layer=2, linear_units=256),
    ),
}


def preset(name: str) -> tuple[SoVITSConfig, GPTConfig]:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    s, g = PRESETS[name]
    return SoVITSConfig(**asdict(s)), GPTConfig(**asdict(g))


def from_mapping(cls, data: dict):
    """Build a config from a mapping, ignoring keys it does not know (upstream files carry more)."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
