"""Small layers shared by SoVITS parts: weight-normalised convolutions, channel LayerNorm, masks.

Weight norm is written out here (rather than torch.nn.utils.weight_norm) so that the state
dict keeps upstream's `weight_g`/`weight_v` names on every torch version, and so that a model
can fold g·v/|v| into a plain weight once for inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sequence_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """[B] lengths -> [B, T] bool mask, True inside the sequence."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class _WeightNorm(nn.Module):
    """weight = g * v / ||v||, one norm per slice along dim 0; an optional bias."""

    def __init__(self, weight_shape: tuple[int, ...], bias_channels: int | None):
        super().__init__()
        w = torch.empty(weight_shape)
        nn.init.kaiming_uniform_(w, a=5 ** 0.5)
        # registration order bias, weight_g, weight_v gives upstream's state-dict order
        self.bias = nn.Parameter(torch.zeros(bias_channels)) if bias_channels else None
        self.weight_g = nn.Parameter(self._norm(w).clone())
        self.weight_v = nn.Parameter(w)
        self._folded: torch.Tensor | None = None

    @staticmethod
    def _norm(v: torch.Tensor) -> torch.Tensor:
        return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))

    def weight(self) -> torch.Tensor:
        if self._folded is not None:
            return self._folded
        return self.weight_g * self.weight_v / self._norm(self.weight_v)

    def fold(self) -> None:
        """Compute the weight once for inference, in place: v becomes the weight and g its norm
        (so g * v / ||v|| is still the weight), with no second copy of it kept in memory.
        Training must call `unfold()` first."""
        with torch.no_grad():
            self._folded = None
            w = self.weight()
            self.weight_v.copy_(w)
            self.weight_g.copy_(self._norm(w))
            self._folded = self.weight_v

    def unfold(self) -> None:
        self._folded = None


class WNConv1d(_WeightNorm):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__((cout, cin, kernel), cout if bias else None)
        self.stride, self.dilation, self.padding = stride, dilation, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(_WeightNorm):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int):
        super().__init__((cin, cout, kernel), cout)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.weight(), self.bias, self.stride, self.padding)


class WNConv2d(_WeightNorm):
    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]):
        super().__init__((cout, cin, *kernel), cout)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, self.stride, self.padding)


def fold_weight_norm(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, _WeightNorm):
            m.fold()
    return module


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T] tensors (upstream names: gamma, beta)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)
