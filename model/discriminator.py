"""HiFi-GAN's multi-period discriminator (one scale discriminator + periods 2, 3, 5, 7, 11; v2Pro
adds 17 and 23) and
the SoVITS training losses. Used by training only; never saved in inference files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import WNConv1d, WNConv2d

LRELU_SLOPE = 0.1
PERIODS = (2, 3, 5, 7, 11)
PRO_PERIODS = (2, 3, 5, 7, 11, 17, 23)   # upstream's for v2Pro/v2ProPlus


def discriminator_periods(config) -> tuple[int, ...]:
    return PRO_PERIODS if config.is_pro else PERIODS


def _conv_stack(convs, post, x):
    """Leaky-ReLU conv layers then the output conv -> (flattened scores, every layer's activations)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = post(x)
    fmap.append(x)
    return x.flatten(1), fmap


class ScaleDiscriminator(nn.Module):
    def __init__(self, narrow: int = 1):
        super().__init__()
        spec = [(1, 16, 15, 1, 1, 7), (16, 64, 41, 4, 4, 20), (64, 256, 41, 4, 16, 20),
                (256, 1024, 41, 4, 64, 20), (1024, 1024, 41, 4, 256, 20), (1024, 1024, 5, 1, 1, 2)]
        self.convs = nn.ModuleList(
            _GroupedConv(max(1, cin // narrow) if cin > 1 else 1, cout // narrow, k, st, max(1, g // narrow), p)
            for cin, cout, k, st, g, p in spec)
        self.conv_post = WNConv1d(1024 // narrow, 1, 3, padding=1)

    def forward(self, x):
        return _conv_stack(self.convs, self.conv_post, x)


class _GroupedConv(WNConv1d):
    def __init__(self, cin, cout, kernel, stride, groups, padding):
        super().__init__(cin // groups, cout, kernel, stride=stride, padding=padding)
        self.groups = groups

    def forward(self, x):
        return F.conv1d(x, self.weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into [T/period, period] and convolves along time."""

    def __init__(self, period: int, narrow: int = 1):
        super().__init__()
        self.period = period
        chans = [1] + [c // narrow for c in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            WNConv2d(chans[i], chans[i + 1], (5, 1), (3 if i < 4 else 1, 1), (2, 0)) for i in range(5))
        self.conv_post = WNConv2d(chans[-1], 1, (3, 1), (1, 1), (1, 0))

    def forward(self, x):
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        return _conv_stack(self.convs, self.conv_post, x.view(b, c, -1, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """`narrow` divides every channel count (1 = upstream's sizes; small presets use 4)."""

    def __init__(self, periods=PERIODS, narrow: int = 1):
        super().__init__()
        self.discriminators = nn.ModuleList([ScaleDiscriminator(narrow), *(PeriodDiscriminator(p, narrow) for p in periods)])

    def forward(self, real, fake):
        """-> (scores on real, scores on fake, feature maps on real, feature maps on fake), one per discriminator."""
        out = [d(real) + d(fake) for d in self.discriminators]
        return [o[0] for o in out], [o[2] for o in out], [o[1] for o in out], [o[3] for o in out]


# -- losses ---------------------------------------------------------------------------------

def discriminator_loss(real_scores, fake_scores) -> torch.Tensor:
    """Least-squares GAN: real -> 1, fake -> 0."""
    return sum(torch.mean((1 - r.float()) ** 2) + torch.mean(f.float() ** 2) for r, f in zip(real_scores, fake_scores))


def generator_loss(fake_scores) -> torch.Tensor:
    return sum(torch.mean((1 - f.float()) ** 2) for f in fake_scores)


def feature_matching_loss(real_maps, fake_maps) -> torch.Tensor:
    """L1 between the discriminators' activations on real and generated audio (x2, as HiFi-GAN)."""
    return 2 * sum(torch.mean(torch.abs(r.float().detach() - f.float()))
                   for rm, fm in zip(real_maps, fake_maps) for r, f in zip(rm, fm))


def kl_loss(z_p, logs_q, m_p, logs_p, mask) -> torch.Tensor:
    """KL(posterior || prior) per frame, with z_p the posterior sample pushed through the flow."""
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl.float() * mask) / torch.sum(mask)


def mel_loss(mel_real, mel_fake) -> torch.Tensor:
    return F.l1_loss(mel_fake, mel_real)
