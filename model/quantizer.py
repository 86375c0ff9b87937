"""Residual vector quantizer with EMA codebooks: SoVITS's content features -> semantic tokens.

Training behaviour (upstream's defaults): the first batch initialises the codebook with
k-means, codes follow an exponential moving average (decay 0.99), and codes used less than
`dead_threshold` times (EMA count) are replaced by random vectors from the current batch.
The code ids of layer 0 are the "semantic tokens" the GPT predicts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import from_main, sum_across


def _kmeans(x: torch.Tensor, n: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    # n distinct starting rows when the batch has enough, otherwise rows drawn with replacement
    if x.shape[0] >= n:
        centers = x[torch.randperm(x.shape[0], device=x.device)[:n]].clone()
    else:
        centers = x[torch.randint(0, x.shape[0], (n,), device=x.device)].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centers).argmin(dim=1)
        counts = torch.bincount(assign, minlength=n)
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        moved = counts > 0
        centers[moved] = sums[moved] / counts[moved, None]
    counts = torch.bincount(torch.cdist(x, centers).argmin(dim=1), minlength=n)
    return centers, counts.to(x.dtype)


class EuclideanCodebook(nn.Module):
    def __init__(self, dim: int, size: int, decay: float = 0.99, eps: float = 1e-5,
                 kmeans_iters: int = 50, dead_threshold: float = 2.0):
        super().__init__()
        self.decay, self.eps = decay, eps
        self.kmeans_iters, self.dead_threshold = kmeans_iters, dead_threshold
        self.register_buffer("inited", torch.zeros(1))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed", torch.zeros(size, dim))
        self.register_buffer("embed_avg", torch.zeros(size, dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[N, D] -> [N] nearest code ids (squared Euclidean distance)."""
        e = self.embed
        dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ e.T + e.pow(2).sum(1)[None]
        return dist.argmin(dim=1)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.embed)

    @torch.no_grad()
    def update(self, x: torch.Tensor, ids: torch.Tensor) -> None:
        """One EMA step (training only): k-means on the first batch, then moving averages."""
        if not bool(self.inited.item()):
            centers, counts = _kmeans(x, self.embed.shape[0], self.kmeans_iters)
            self.embed.copy_(centers)
            self.embed_avg.copy_(centers)
            self.cluster_size.copy_(counts)
            self.inited.fill_(1)
            from_main(self.embed, self.embed_avg, self.cluster_size)  # with DDP: one codebook, rank 0's
            return
        onehot = F.one_hot(ids, self.embed.shape[0]).to(x.dtype)
        counts, sums = onehot.sum(0), onehot.T @ x
        sum_across(counts, sums)  # with DDP: the statistics of the global batch, as one process would see
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.embed.shape[0] * self.eps) * n
        self.embed.copy_(self.embed_avg / smoothed[:, None])
        self._expire_dead_codes(x)

    def _expire_dead_codes(self, x: torch.Tensor) -> None:
        dead = self.cluster_size < self.dead_threshold
        if dead.any():
            pick = torch.randint(0, x.shape[0], (int(dead.sum()),), device=x.device)
            self.embed[dead] = x[pick]
            self.embed_avg[dead] = x[pick] * self.dead_threshold
            self.cluster_size[dead] = self.dead_threshold
            from_main(self.embed, self.embed_avg, self.cluster_size)  # replacements drawn from rank 0's batch


class VectorQuantization(nn.Module):
    def __init__(self, dim: int, size: int, **kw):
        super().__init__()
        self._codebook = EuclideanCodebook(dim, size, **kw)


class ResidualVectorQuantization(nn.Module):
    def __init__(self, n_q: int, dim: int, size: int, **kw):
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantization(dim, size, **kw) for _ in range(n_q))


class ResidualVectorQuantizer(nn.Module):
    """[B, D, T] features -> quantized [B, D, T], codes [n_q, B, T], commitment loss."""

    def __init__(self, dimension: int = 768, n_q: int = 1, bins: int = 1024):
        super().__init__()
        self.vq = ResidualVectorQuantization(n_q, dimension, bins)

    @property
    def codebooks(self) -> list:
        """Each layer's codebook. The modules are named `_codebook` because upstream's checkpoint
        keys are (`quantizer.vq.layers.0._codebook.embed`); other modules use this instead."""
        return [layer._codebook for layer in self.vq.layers]

    def forward(self, x: torch.Tensor):
        # The codebook, its EMA statistics and dead-code expiry stay in the codebook's dtype (fp32
        # in training) whatever autocast does: bf16 averages would drift, and writing bf16 rows
        # into the fp32 codebook fails. Gradients flow back through the cast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._forward(x.to(self.vq.layers[0]._codebook.embed.dtype))

    def _forward(self, x: torch.Tensor):
        residual = x.transpose(1, 2)  # [B, T, D]
        quantized_out = torch.zeros_like(residual)
        codes, loss = [], x.new_zeros(())
        for layer in self.vq.layers:
            book = layer._codebook
            flat = residual.reshape(-1, residual.shape[-1])
            if self.training:
                book.update(flat.detach(), book.encode(flat.detach()))
            ids = book.encode(flat)
            q = book.decode(ids).view_as(residual)
            if self.training:
                loss = loss + F.mse_loss(q.detach(), residual)
                q = residual + (q - residual).detach()      # straight-through estimator
            quantized_out = quantized_out + q
            residual = residual - q.detach()
            codes.append(ids.view(residual.shape[:2]))
        return quantized_out.transpose(1, 2), torch.stack(codes), loss

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, T] -> codes [n_q, B, T]."""
        residual = x.transpose(1, 2)
        codes = []
        for layer in self.vq.layers:
            book = layer._codebook
            ids = book.encode(residual.reshape(-1, residual.shape[-1])).view(residual.shape[:2])
            residual = residual - book.decode(ids)
            codes.append(ids)
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [n_q, B, T] -> [B, D, T]."""
        out = sum(layer._codebook.decode(c) for layer, c in zip(self.vq.layers, codes))
        return out.transpose(1, 2)
