"""SoVITS v2: content codes + phones + a reference spectrogram -> 32 kHz waveform.

Parts (names are upstream's state-dict prefixes):
- `ssl_proj` + `quantizer`: 50 Hz content features -> 25 Hz semantic codes
- `enc_p` (TextEncoder): codes and phones meet in MRTE, conditioned on the style vector `ge`
- `ref_enc` (MelStyleEncoder): reference linear spectrogram -> `ge`
- `flow`: normalising flow between the prior and the posterior latent
- `enc_q` (PosteriorEncoder, training only) and `dec` (HiFi-GAN generator)
- `sv_emb`: a speaker embedding projected and added to `ge`. On v2Pro/v2ProPlus (upstream's)
  it reads the 20480-d ERes2NetV2 timbre vector, `prelu` follows, and `ge_to512` narrows the
  result for the text encoder's MRTE (flow, posterior and vocoder take it whole). On v2 it is
  our optional extension (Resemblyzer, zero-initialised, no PReLU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Encoder, MultiHeadAttention
from .config import HOP, SoVITSConfig
from .layers import WNConv1d, WNConvTranspose1d, sequence_mask
from .quantizer import ResidualVectorQuantizer

LRELU_SLOPE = 0.1


def _mask(lengths: torch.Tensor, t: int, dtype) -> torch.Tensor:
    return sequence_mask(lengths, t).unsqueeze(1).to(dtype)


class MRTE(nn.Module):
    """Content frames attend to phones; the style vector is added on the way out."""

    def __init__(self, channels: int, hidden: int, n_heads: int):
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden, hidden, n_heads)
        self.c_pre = nn.Conv1d(channels, hidden, 1)
        self.text_pre = nn.Conv1d(channels, hidden, 1)
        self.c_post = nn.Conv1d(hidden, channels, 1)

    def forward(self, ssl, ssl_mask, text, text_mask, ge):
        attn_mask = ssl_mask.unsqueeze(-1) * text_mask.unsqueeze(2)
        ssl = self.c_pre(ssl * ssl_mask)
        text = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl * ssl_mask, text * text_mask, attn_mask) + ssl + ge
        return self.c_post(x * ssl_mask)


class TextEncoder(nn.Module):
    def __init__(self, c: SoVITSConfig):
        super().__init__()
        h = c.hidden_channels
        self.ssl_proj = nn.Conv1d(c.content_dim, h, 1)
        self.encoder_ssl = Encoder(h, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size, c.p_dropout)
        self.encoder_text = Encoder(h, c.filter_channels, c.n_heads, c.n_layers, c.kernel_size, c.p_dropout)
        self.text_embedding = nn.Embedding(c.n_symbols, h)
        self.mrte = MRTE(h, c.text_style_dim, c.mrte_heads)
        self.encoder2 = Encoder(h, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size, c.p_dropout)
        self.proj = nn.Conv1d(h, c.inter_channels * 2, 1)

    def forward(self, y, y_lengths, text, text_lengths, ge, speed: float = 1.0):
        y_mask = _mask(y_lengths, y.shape[2], y.dtype)
        y = self.encoder_ssl(self.ssl_proj(y * y_mask) * y_mask, y_mask)
        text_mask = _mask(text_lengths, text.shape[1], y.dtype)
        text = self.encoder_text(self.text_embedding(text).transpose(1, 2) * text_mask, text_mask)
        y = self.encoder2(self.mrte(y, y_mask, text, text_mask, ge) * y_mask, y_mask)
        if speed != 1:
            # slower speech = more frames: stretch the prior in time
            y = F.interpolate(y, size=int(y.shape[-1] / speed) + 1, mode="linear")
            y_mask = F.interpolate(y_mask, size=y.shape[-1], mode="nearest")
        m, logs = torch.chunk(self.proj(y) * y_mask, 2, dim=1)
        return m, logs, y_mask


class _LinearNorm(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.fc = nn.Linear(cin, cout)

    def forward(self, x):
        return self.fc(x)


class _ConvGLU(nn.Module):
    def __init__(self, channels: int, kernel: int, p_dropout: float):
        super().__init__()
        self.conv1 = nn.Module()
        self.conv1.conv = nn.Conv1d(channels, 2 * channels, kernel, padding=(kernel - 1) // 2)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x):
        a, b = torch.chunk(self.conv1.conv(x), 2, dim=1)
        return x + self.drop(a * torch.sigmoid(b))


class _StyleAttention(nn.Module):
    """Plain multi-head self-attention on [B, T, C]; scores are scaled by sqrt(d_model) as upstream."""

    def __init__(self, d_model: int, n_head: int, p_dropout: float):
        super().__init__()
        self.n_head = n_head
        self.w_qs = nn.Linear(d_model, d_model)
        self.w_ks = nn.Linear(d_model, d_model)
        self.w_vs = nn.Linear(d_model, d_model)
        self.fc = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(p_dropout)
        self.scale = d_model ** -0.5

    def forward(self, x, pad):  # pad: [B, T] True where padded
        b, t, c = x.shape
        def heads(z):
            return z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
        q, k, v = heads(self.w_qs(x)), heads(self.w_ks(x)), heads(self.w_vs(x))
        scores = (q @ k.transpose(-2, -1)) * self.scale
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
        return self.drop(self.fc(out)) + x


class MelStyleEncoder(nn.Module):
    """Reference spectrogram [B, bins, T] -> style vector `ge` [B, gin, 1]."""

    def __init__(self, bins: int, hidden: int, out: int, kernel: int = 5, n_head: int = 2,
                 p_dropout: float = 0.1):
        super().__init__()
        self.spectral = nn.Sequential(_LinearNorm(bins, hidden), nn.Mish(), nn.Dropout(p_dropout),
                                      _LinearNorm(hidden, hidden), nn.Mish(), nn.Dropout(p_dropout))
        self.temporal = nn.Sequential(_ConvGLU(hidden, kernel, p_dropout), _ConvGLU(hidden, kernel, p_dropout))
        self.slf_attn = _StyleAttention(hidden, n_head, p_dropout)
        self.fc = _LinearNorm(hidden, out)

    def forward(self, x, mask):
        pad = mask[:, 0] == 0                                  # [B, T]
        x = self.spectral(x.transpose(1, 2))
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        x = self.slf_attn(x.masked_fill(pad[..., None], 0), pad)
        x = self.fc(x).masked_fill(pad[..., None], 0)
        return (x.sum(dim=1) / (~pad).sum(dim=1, keepdim=True)).unsqueeze(-1)


class WaveNet(nn.Module):
    """Gated dilated conv stack with global conditioning (upstream `WN`)."""

    def __init__(self, hidden: int, kernel: int, n_layers: int, gin: int, p_dropout: float = 0.0):
        super().__init__()
        self.hidden, self.n_layers = hidden, n_layers
        self.in_layers = nn.ModuleList(
            WNConv1d(hidden, 2 * hidden, kernel, padding=kernel // 2) for _ in range(n_layers))
        self.res_skip_layers = nn.ModuleList(
            WNConv1d(hidden, 2 * hidden if i < n_layers - 1 else hidden, 1) for i in range(n_layers))
        self.cond_layer = WNConv1d(gin, 2 * hidden * n_layers, 1)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x, mask, g):
        h = self.hidden
        out = torch.zeros_like(x)
        g = self.cond_layer(g)
        for i, (inp, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            a = inp(x) + g[:, 2 * h * i: 2 * h * (i + 1)]
            acts = self.drop(torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:]))
            rs = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + rs[:, :h]) * mask
                out = out + rs[:, h:]
            else:
                out = out + rs
        return out * mask


class CouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half is shifted by a function of the first."""

    def __init__(self, channels: int, hidden: int, kernel: int, n_layers: int, gin: int):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, kernel, n_layers, gin)
        self.post = nn.Conv1d(hidden, self.half, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x, mask, g, reverse: bool = False):
        x0, x1 = x[:, :self.half], x[:, self.half:]
        shift = self.post(self.enc(self.pre(x0) * mask, mask, g)) * mask
        x1 = (x1 - shift) * mask if reverse else (x1 + shift) * mask
        return torch.cat([x0, x1], dim=1)


class _Flip(nn.Module):
    def forward(self, x, *args, **kw):
        return torch.flip(x, [1])


class Flow(nn.Module):
    def __init__(self, channels: int, hidden: int, kernel: int, n_layers: int, n_flows: int, gin: int):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(CouplingLayer(channels, hidden, kernel, n_layers, gin))
            self.flows.append(_Flip())

    def forward(self, x, mask, g, reverse: bool = False):
        for f in (reversed(self.flows) if reverse else self.flows):
            x = f(x, mask, g=g, reverse=reverse)
        return x


class PosteriorEncoder(nn.Module):
    def __init__(self, cin: int, cout: int, hidden: int, n_layers: int, gin: int):
        super().__init__()
        self.pre = nn.Conv1d(cin, hidden, 1)
        self.enc = WaveNet(hidden, 5, n_layers, gin)
        self.proj = nn.Conv1d(hidden, cout * 2, 1)

    def forward(self, spec, lengths, g):
        mask = _mask(lengths, spec.shape[2], spec.dtype)
        m, logs = torch.chunk(self.proj(self.enc(self.pre(spec) * mask, mask, g)) * mask, 2, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * mask
        return z, m, logs, mask


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel, dilation=d, padding=(kernel * d - d) // 2) for d in dilations)
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel, padding=(kernel - 1) // 2) for _ in dilations)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class Generator(nn.Module):
    """HiFi-GAN: latent frames at 50 Hz -> waveform at 32 kHz (upsampling x640)."""

    def __init__(self, c: SoVITSConfig):
        super().__init__()
        ch = c.upsample_initial_channel
        self.n_kernels = len(c.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(c.inter_channels, ch, 7, padding=3)
        self.ups = nn.ModuleList(
            WNConvTranspose1d(ch // 2 ** i, ch // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)))
        self.resblocks = nn.ModuleList(
            ResBlock(ch // 2 ** (i + 1), k, d)
            for i in range(len(self.ups))
            for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(ch // 2 ** len(self.ups), 1, 7, padding=3, bias=False)
        self.cond = nn.Conv1d(c.gin_channels, ch, 1)

    def forward(self, x, g):
        x = self.conv_pre(x) + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.n_kernels:(i + 1) * self.n_kernels]
            x = sum(b(x) for b in blocks) / self.n_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))

    def receptive_frames(self) -> int:
        """An upper bound on how many latent frames either side of a frame reach its output:
        each layer's reach at its own rate (v2: 14; a change to one frame measurably moves the
        output 7.5 frames either side)."""
        reach, rate = (self.conv_pre.kernel_size[0] - 1) / 2, 1
        for i, up in enumerate(self.ups):
            k, u = up.weight_v.shape[2], up.stride
            reach += k / u / rate
            rate *= u
            blocks = self.resblocks[i * self.n_kernels:(i + 1) * self.n_kernels]
            reach += max(sum((c.weight_v.shape[2] - 1) // 2 * (c.dilation + 1) for c in b.convs1) for b in blocks) / rate
        reach += (self.conv_post.kernel_size[0] - 1) / 2 / rate
        return math.ceil(reach) + 1

    def in_chunks(self, x, g, frames: int = 200):
        """The waveform `forward` makes, `frames` latent frames at a time, each seen with its
        receptive field of context either side and cut back to its own samples: the same audio
        (to rounding), with working memory set by the chunk, not the sentence. The vocoder's
        largest buffers grow with the length (about 800 MB for a 14 s sentence at once)."""
        total, context = x.shape[2], self.receptive_frames()
        if total <= frames + 2 * context:
            return self(x, g)
        hop = math.prod(up.stride for up in self.ups)
        pieces = []
        for start in range(0, total, frames):
            lo, end, hi = max(0, start - context), min(total, start + frames), min(total, start + frames + context)
            pieces.append(self(x[:, :, lo:hi], g)[:, :, (start - lo) * hop:(end - lo) * hop])
        return torch.cat(pieces, dim=2)


class SoVITS(nn.Module):
    """Upstream's SynthesizerTrn (v2, v2Pro, v2ProPlus), plus our optional `sv_emb` path on v2."""

    def __init__(self, c: SoVITSConfig):
        super().__init__()
        self.config = c
        self.enc_p = TextEncoder(c)
        self.dec = Generator(c)
        self.enc_q = PosteriorEncoder(c.spec_channels, c.inter_channels, c.hidden_channels,
                                      c.posterior_layers, c.gin_channels)
        self.flow = Flow(c.inter_channels, c.hidden_channels, 5, c.flow_layers, c.n_flows, c.gin_channels)
        self.ref_enc = MelStyleEncoder(c.ref_bins, c.style_hidden, c.gin_channels)
        self.ssl_proj = nn.Conv1d(c.ssl_dim, c.content_dim, 2, stride=2)
        self.quantizer = ResidualVectorQuantizer(c.content_dim, 1, c.codebook_size)
        if c.is_pro:
            self.sv_emb = nn.Linear(c.sv_dim, c.gin_channels)
            self.ge_to512 = nn.Linear(c.gin_channels, c.text_style_dim)
            self.prelu = nn.PReLU(num_parameters=c.gin_channels)
        elif c.sv_dim:
            # zero-initialised, so a model fine-tuned from a v2 file starts out identical to it
            self.sv_emb = nn.Linear(c.sv_dim, c.gin_channels)
            nn.init.zeros_(self.sv_emb.weight)
            nn.init.zeros_(self.sv_emb.bias)

    # -- conditioning -----------------------------------------------------------------------
    def style(self, refer: torch.Tensor, refer_lengths: torch.Tensor | None = None,
              sv: torch.Tensor | None = None) -> torch.Tensor:
        """Reference linear spectrogram(s) [B, 1025, T] (+ speaker embedding [B, sv_dim]) -> ge [B, gin, 1]."""
        if refer_lengths is None:
            refer_lengths = torch.full((refer.shape[0],), refer.shape[2], device=refer.device)
        mask = _mask(refer_lengths, refer.shape[2], refer.dtype)
        ge = self.ref_enc(refer[:, :self.config.ref_bins] * mask, mask)
        if self.config.sv_dim:
            if sv is None:
                raise ValueError("this model was trained with speaker embeddings: pass `sv`")
            ge = ge + self.sv_emb(sv).unsqueeze(-1)
        if self.config.is_pro:
            ge = self.prelu(ge)
        return ge

    def text_style(self, ge: torch.Tensor) -> torch.Tensor:
        """The style vector as the text encoder's MRTE reads it: narrowed by `ge_to512` on v2Pro."""
        return self.ge_to512(ge.transpose(1, 2)).transpose(1, 2) if self.config.is_pro else ge

    # -- inference --------------------------------------------------------------------------
    def content(self, ssl: torch.Tensor) -> torch.Tensor:
        """50 Hz content features [B, ssl_dim, T] -> 25 Hz projected features [B, content_dim, T/2]."""
        if ssl.shape[1] != self.config.ssl_dim:
            raise ValueError(f"content features are {ssl.shape[1]}-d; this model expects "
                             f"{self.config.ssl_dim}-d from {self.config.ssl_extractor}")
        return self.ssl_proj(ssl)

    @torch.no_grad()
    def extract_latent(self, ssl: torch.Tensor) -> torch.Tensor:
        """Content features -> semantic codes [n_q, B, T/2]."""
        return self.quantizer.encode(self.content(ssl))

    @torch.no_grad()
    def latent(self, codes: torch.Tensor, text: torch.Tensor, ge: torch.Tensor,
               noise_scale: float = 0.5, speed: float = 1.0, generator: torch.Generator | None = None):
        """codes [1, B, T] + phone ids [B, N] + style `ge` -> latent z [B, inter, 2T/speed] for `dec`."""
        quantized = F.interpolate(self.quantizer.decode(codes), scale_factor=2, mode="nearest")
        y_lengths = torch.full((codes.shape[1],), quantized.shape[2], device=codes.device)
        text_lengths = torch.full((text.shape[0],), text.shape[1], device=text.device)
        m, logs, mask = self.enc_p(quantized, y_lengths, text, text_lengths, self.text_style(ge), speed)
        noise = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
        z = self.flow(m + noise * torch.exp(logs) * noise_scale, mask, g=ge, reverse=True)
        return z * mask

    @torch.no_grad()
    def decode(self, codes, text, ge, noise_scale: float = 0.5, speed: float = 1.0, generator=None):
        """codes + phones + style -> waveform [B, 1, samples] at 32 kHz."""
        return self.dec(self.latent(codes, text, ge, noise_scale, speed, generator), g=ge)

    # -- training ---------------------------------------------------------------------------
    def forward(self, ssl, spec, spec_lengths, text, text_lengths, sv=None):
        """One training pass: returns the generated slice, its start frames and everything the losses need."""
        ge = self.style(spec, spec_lengths, sv)
        quantized, codes, commit_loss = self.quantizer(self.content(ssl))
        quantized = F.interpolate(quantized, size=spec.shape[2], mode="nearest")
        m_p, logs_p, y_mask = self.enc_p(quantized, spec_lengths, text, text_lengths, self.text_style(ge))
        z, m_q, logs_q, _ = self.enc_q(spec, spec_lengths, g=ge)
        z_p = self.flow(z, y_mask, g=ge)
        frames = self.config.segment_size // HOP
        starts = random_slice_starts(spec_lengths, frames)
        audio = self.dec(slice_frames(z, starts, frames), g=ge)
        return audio, starts, commit_loss, y_mask, (z_p, m_p, logs_p, logs_q)


def random_slice_starts(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    top = (lengths - frames).clamp(min=0) + 1
    return (torch.rand(lengths.shape, device=lengths.device) * top).long()


def slice_frames(x: torch.Tensor, starts: torch.Tensor, frames: int) -> torch.Tensor:
    """Cut `frames` frames from each item of [B, C, T] at its start (zero-padded past the end)."""
    x = F.pad(x, (0, frames))
    idx = starts[:, None] + torch.arange(frames, device=x.device)[None]
    return x.gather(2, idx[:, None, :].expand(-1, x.shape[1], -1))
