"""The GPT's decode loops, in one room.

- `sampling.py`: `SamplingParams`, the token limits, and `draw` (repetition penalty, top-p,
  temperature, top-k, the seeded draw, the stop rule): the one draw every loop uses
- `cache.py`: the `KVCache` protocol and its three kinds (growing, static, per row)
- `interface.py`: what the loops need of the network (`Decodable`), a `Prefill`, a `DecodeBatch`
- `eager.py`: the eager loop (the CPU default of `Text2Semantic.generate`)
- `static.py`: the fixed-shape loop a GPU replays as CUDA graphs (`StaticDecoder`, `DecoderCache`)
- `continuous.py`: continuous batching (`ContinuousDecoder`), what a server runs

The loops import no model: they drive the `Text2Semantic` they are given, whose `generate` is
the front door.
"""

from .cache import GrowingKVCache, KVCache, RowKVCache, StaticKVCache
from .continuous import ContinuousDecoder
from .interface import Decodable, DecodeBatch, Prefill
from .sampling import MAX_TOKENS, MIN_TOKENS, SamplingParams, draw
from .static import DecoderCache, StaticDecoder, capture_graph

__all__ = [
    "MAX_TOKENS", "MIN_TOKENS", "ContinuousDecoder", "Decodable", "DecodeBatch", "DecoderCache", "GrowingKVCache",
    "KVCache", "Prefill", "RowKVCache", "SamplingParams", "StaticDecoder", "StaticKVCache", "capture_graph", "draw",
]
