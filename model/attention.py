"""VITS-style attention blocks used by SoVITS's text encoder and MRTE.

`MultiHeadAttention` works on [B, C, T] tensors with 1x1 convolutions for q/k/v/o. With a
`window`, it adds learned relative-position terms for offsets -window..window (shared across
heads); offsets outside the window contribute nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import ChannelLayerNorm

MASK_VALUE = -1e4


class MultiHeadAttention(nn.Module):
    def __init__(self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0,
                 window: int | None = None):
        super().__init__()
        assert channels % n_heads == 0
        self.n_heads, self.k = n_heads, channels // n_heads
        self.window = window
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        if window is not None:
            std = self.k ** -0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.k) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.k) * std)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        nn.init.xavier_uniform_(self.conv_q.weight)
        nn.init.xavier_uniform_(self.conv_k.weight)
        nn.init.xavier_uniform_(self.conv_v.weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        return x.view(b, self.n_heads, self.k, t).transpose(2, 3)  # [B, H, T, k]

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor | None = None):
        """x: queries [B, C, Tq]; c: keys/values [B, C, Tk]; attn_mask [B, 1, Tq, Tk], 0 = blocked."""
        q = self._heads(self.conv_q(x)) / math.sqrt(self.k)
        k = self._heads(self.conv_k(c))
        v = self._heads(self.conv_v(c))
        scores = q @ k.transpose(-2, -1)
        if self.window is not None:
            offsets, inside = self._offsets(q.shape[2], x.device, q.dtype)
            rel = q @ self.emb_rel_k[0].T                              # [B, H, T, 2w+1]
            scores = scores + rel.gather(-1, offsets.expand(*rel.shape[:2], -1, -1)) * inside
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, MASK_VALUE)
        p = self.drop(torch.softmax(scores, dim=-1))
        out = p @ v
        if self.window is not None:
            by_offset = torch.zeros(*p.shape[:3], 2 * self.window + 1, dtype=p.dtype, device=p.device)
            by_offset.scatter_add_(-1, offsets.expand(*p.shape[:2], -1, -1), p * inside)
            out = out + by_offset @ self.emb_rel_v[0]
        b, h, t, k = out.shape
        return self.conv_o(out.transpose(2, 3).reshape(b, h * k, t))

    def _offsets(self, t: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """For each (i, j): index of offset j-i into the relative table, and whether it is in the window."""
        pos = torch.arange(t, device=device)
        rel = pos[None, :] - pos[:, None]
        inside = (rel.abs() <= self.window).to(dtype)
        return (rel.clamp(-self.window, self.window) + self.window)[None, None], inside


class FFN(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel: int, p_dropout: float = 0.0):
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel, padding=kernel // 2)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel, padding=kernel // 2)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.conv_1(x * mask)))
        return self.conv_2(x * mask) * mask


class Encoder(nn.Module):
    """Post-norm transformer over [B, C, T] with relative attention (window 4)."""

    def __init__(self, hidden: int, filter_channels: int, n_heads: int, n_layers: int, kernel: int,
                 p_dropout: float, window: int = 4):
        super().__init__()
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden, hidden, n_heads, p_dropout, window) for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(hidden) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden, filter_channels, kernel, p_dropout) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(hidden) for _ in range(n_layers))
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                           self.norm_layers_2):
            x = norm1(x + self.drop(attn(x, x, attn_mask)))
            x = norm2(x + self.drop(ffn(x, mask)))
        return x * mask
