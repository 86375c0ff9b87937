"""The KV caches the decode loops write: one protocol, three ways of choosing where a step's
keys and values go.

A layer's attention calls `append(layer, k, v)` with the new positions' keys and values [B, H,
T, D] and attends over what it returns; after the last layer the model calls `advance()`. So
the network never knows which cache it writes:

- `GrowingKVCache`: positions counted on the host; any number at once (a prefill, or one per
  eager step). It starts small and doubles up to a limit, or writes into fixed tensors that
  someone else keeps (a static decoder's, for its prefill).
- `StaticKVCache`: one position per step at a device-held index, for fixed-shape steps that a
  CUDA graph replays; attention reads the whole capacity (a mask hides the unwritten part).
- `RowKVCache`: one position per step, each row at its own device-held index (continuous
  batching: rows joined at different times).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from .interface import Decodable


def layer_tensors(model: Decodable, batch: int, capacity: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Zeroed keys and values for every layer of `model`: [batch, heads, capacity, head_dim] each."""
    c = model.config
    shape = (batch, c.head, capacity, c.hidden_dim // c.head)
    return ([torch.zeros(shape, device=model.device, dtype=model.dtype) for _ in range(c.n_layer)],
            [torch.zeros(shape, device=model.device, dtype=model.dtype) for _ in range(c.n_layer)])


class KVCache(ABC):
    """Keys `k` and values `v` of every layer, one tensor each [B, H, capacity, D]."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor]):
        self.k, self.v = k, v

    @property
    def capacity(self) -> int:
        return self.k[-1].shape[2]

    @abstractmethod
    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions' keys and values of `layer`; returns the keys and values to attend over."""

    @abstractmethod
    def advance(self) -> None:
        """Every layer has written this step's positions: the next step writes after them."""


class GrowingKVCache(KVCache):
    """Positions counted on the host; `append` writes after `length` and returns the filled view.

    With a `limit` above its size it doubles when full (up to `limit`), rather than holding room
    for every item's token cap from the start: caps are generous (a quarter of a normal reading
    rate), so a full-size cache for a batch of 16 v2 sentences held about 1 GB that decoding
    rarely reached. Each layer has its own tensors and grows on its own, so a growth holds at
    most one layer's old and new copies at once. Without a `limit` it never grows: it writes
    into tensors someone else keeps (a static decoder's, for the prefill)."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor], limit: int | None = None):
        super().__init__(k, v)
        self.limit = max(self.capacity, limit or 0)
        self.length = 0
        self._pending = 0         # positions written by this step's layers, counted at `advance`

    def _grow(self, layer: int, needed: int) -> None:
        size = min(self.limit, max(needed, 2 * self.k[layer].shape[2]))
        for store in (self.k, self.v):
            old = store[layer]
            store[layer] = old.new_zeros(*old.shape[:2], size, old.shape[3])
            store[layer][:, :, :self.length] = old[:, :, :self.length]
            del old

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        start, n = self.length, k.shape[2]
        if start + n > self.k[layer].shape[2]:
            self._grow(layer, start + n)
        self.k[layer][:, :, start:start + n] = k
        self.v[layer][:, :, start:start + n] = v
        self._pending = n
        return self.k[layer][:, :, :start + n], self.v[layer][:, :, :start + n]

    def advance(self) -> None:
        self.length += self._pending


class StaticKVCache(KVCache):
    """Fixed capacity, one position per step written at `position` (a device tensor [1]);
    `append` returns the whole capacity."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor]):
        super().__init__(k, v)
        self.position = torch.zeros(1, dtype=torch.long, device=k[0].device)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k[layer].index_copy_(2, self.position, k)
        self.v[layer].index_copy_(2, self.position, v)
        return self.k[layer], self.v[layer]

    def advance(self) -> None:
        self.position.add_(1)


class RowKVCache(KVCache):
    """Fixed capacity, one position per step, each row at its own `position` (a device tensor
    [B]); a step moves a row on by `stride` (1, or a device tensor [B] that is 0 for a free row);
    `append` returns the whole capacity."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor], position: torch.Tensor,
                 stride: torch.Tensor | int = 1):
        super().__init__(k, v)
        self.position, self.stride = position, stride
        self.rows = torch.arange(position.shape[0], device=position.device)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k[layer][self.rows, :, self.position] = k[:, :, 0]
        self.v[layer][self.rows, :, self.position] = v[:, :, 0]
        return self.k[layer], self.v[layer]

    def advance(self) -> None:
        self.position.add_(self.stride)
