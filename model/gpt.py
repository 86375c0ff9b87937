"""Text2Semantic decoder (the "GPT"): phones + BERT features -> semantic tokens, with a KV cache.

Sequence layout: [phones of reference + target text | semantic tokens of the reference | new tokens].
Phones attend to all phones (and never to audio); audio tokens attend to every phone and
causally to earlier audio tokens. Each stream has its own sine positions scaled by a learned
alpha. Layers are post-norm. Generation stops at EOS (=1024), which is not allowed during the
first MIN_TOKENS steps, or at the cap.

The network offers the decode loops (`model/decode/`) a small public interface: `prefill` (a
prompt through the network, into a KV cache), `step` (new positions through it, with the cache),
`embed_audio`/`embed_audio_at` (tokens with their positions), `dtype` and `device`; `generate` is
the front door that picks a loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import GPTConfig
from .decode import eager, static
from .decode.cache import KVCache
from .decode.interface import DecodeBatch, Prefill
from .decode.sampling import MAX_TOKENS, MIN_TOKENS, SamplingParams
from .decode.static import DecoderCache


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ W.T + b where the matrices may be stored in fp16 (see `half_matrices`).

    One row at a time (decoding) runs in the weight's precision, which halves the bytes read;
    many rows (the prompt) are compute-bound, where a CPU's fp32 kernels win, so the matrix is
    widened for that one product.
    """
    if weight.dtype == x.dtype:
        return F.linear(x, weight, bias)
    rows = x.numel() // x.shape[-1]
    if rows > 8:
        return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))
    return F.linear(x.to(weight.dtype), weight, None if bias is None else bias.to(weight.dtype)).to(x.dtype)


class Linear(nn.Linear):
    def forward(self, x):
        return _linear(x, self.weight, self.bias)


class _Embedding(nn.Module):
    def __init__(self, dim: int, vocab: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    def forward(self, x):
        return self.word_embeddings(x)


class SinePositions(nn.Module):
    """x + alpha * PE(position); PE interleaves sin (even dims) and cos (odd dims)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))
        self._cached: torch.Tensor | None = None  # the table so far: decoding reads one row a step

    def table(self, n: int, device, dtype) -> torch.Tensor:
        pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, self.dim, 2, device=device, dtype=torch.float32)
                        * (-math.log(10000.0) / self.dim))
        pe = torch.zeros(n, self.dim, device=device)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        return pe.to(dtype)

    def rows(self, n: int, device, dtype) -> torch.Tensor:
        """A table of at least `n` rows, computed once and extended by doubling: each row depends
        only on its position, so a longer table holds the same rows."""
        pe = self._cached
        stale = pe is None or pe.shape[0] < n or pe.device != device or pe.dtype != dtype
        if stale or (pe.is_inference() and not torch.is_inference_mode_enabled()):  # autograd can't save those
            pe = self._cached = self.table(max(n, 256, 0 if pe is None else 2 * pe.shape[0]), device, dtype)
        return pe

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        n = start + x.shape[1]
        return x + self.alpha * self.rows(n, x.device, x.dtype)[start:n][None]


class SelfAttention(nn.Module):
    """torch.nn.MultiheadAttention's parameter layout (in_proj_weight, out_proj) with a KV cache."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, mask=None, cache: KVCache | None = None, layer: int = 0):
        b, t, d = x.shape
        q, k, v = _linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = cache.append(layer, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.self_attn = SelfAttention(c.hidden_dim, c.head)
        self.linear1 = Linear(c.hidden_dim, c.linear_units)
        self.linear2 = Linear(c.linear_units, c.hidden_dim)
        self.norm1 = nn.LayerNorm(c.hidden_dim)
        self.norm2 = nn.LayerNorm(c.hidden_dim)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, mask=None, cache=None, layer: int = 0):
        x = self.norm1(x + self.drop(self.self_attn(x, mask, cache, layer)))
        return self.norm2(x + self.drop(self.linear2(self.drop(F.relu(self.linear1(x))))))


class _Stack(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.n_layer))


class Text2Semantic(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.config = c
        d = c.embedding_dim
        self.bert_proj = nn.Linear(c.bert_dim, d)
        self.ar_text_embedding = _Embedding(d, c.phoneme_vocab_size)
        self.ar_text_position = SinePositions(d)
        self.ar_audio_embedding = _Embedding(d, c.vocab_size)
        self.ar_audio_position = SinePositions(d)
        self.h = _Stack(c)
        self.ar_predict_layer = Linear(d, c.vocab_size, bias=False)
        # the static loop's decoders (buffers and CUDA graphs), reused by later calls of one shape
        self.static_decoders = DecoderCache()

    @property
    def dtype(self) -> torch.dtype:
        """The precision the network computes in (fp16 matrices under `half_matrices` aside)."""
        return self.bert_proj.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.bert_proj.weight.device

    def half_matrices(self) -> "Text2Semantic":
        """Store the transformer's matrices in fp16 and keep everything else in fp32.

        Decoding one token reads every weight once, so on a CPU it is bound by memory
        bandwidth: half the bytes is nearly twice the speed. Weights come from fp16 files, so
        this keeps them exactly; only each matrix product's inputs are rounded to fp16.
        """
        for layer in self.h.layers:
            attn = layer.self_attn
            attn.in_proj_weight.data = attn.in_proj_weight.data.half()
            for lin in (attn.out_proj, layer.linear1, layer.linear2):
                lin.weight.data = lin.weight.data.half()
        self.ar_predict_layer.weight.data = self.ar_predict_layer.weight.data.half()
        return self

    def embed_text(self, phones: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """phones [B, N], bert [B, bert_dim, N] -> [B, N, d]."""
        x = self.ar_text_embedding(phones) + self.bert_proj(bert.transpose(1, 2).to(self.dtype))
        return self.ar_text_position(x)

    def embed_audio(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """tokens [B, T] at audio positions start.. -> [B, T, d]."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens), start)

    def audio_position_table(self, n: int) -> torch.Tensor:
        """The audio stream's sine rows for positions 0..n-1 (at least), unscaled: fixed-shape
        steps pick their rows from it by a device-held index and pass them to `embed_audio_at`."""
        return self.ar_audio_position.rows(n, self.device, self.dtype)

    def embed_audio_at(self, tokens: torch.Tensor, position_rows: torch.Tensor) -> torch.Tensor:
        """tokens [B, T] embedded with their positions' rows of `audio_position_table` (broadcast
        to [B, T, d]): what `embed_audio` gives where positions live on the device."""
        return self.ar_audio_embedding(tokens) + self.ar_audio_position.alpha * position_rows

    def _run(self, x, mask=None, cache=None):
        for i, layer in enumerate(self.h.layers):
            x = layer(x, mask, cache, i)
        if cache is not None:
            cache.advance()
        return x

    @staticmethod
    def prefix_mask(n_text: int, n_audio: int, device) -> torch.Tensor:
        """Boolean [T, T] mask, True = may attend: text sees text; audio sees text + earlier audio."""
        t = n_text + n_audio
        allowed = torch.zeros(t, t, dtype=torch.bool, device=device)
        allowed[:, :n_text] = True
        allowed[n_text:, n_text:] = torch.tril(torch.ones(n_audio, n_audio, dtype=torch.bool, device=device))
        return allowed

    # -- training ---------------------------------------------------------------------------
    def teacher_forced(self, phones, phone_lengths, bert, codes, code_lengths):
        """Logits for every target, the targets, and which of them are real (not padding).

        Targets are the codes followed by EOS, as upstream trains them: the first code is
        predicted from the last phone's position, every later code and EOS from the code before.
        Returns logits [B, L + 1, V], targets [B, L + 1], valid [B, L + 1] for codes [B, L]."""
        eos = self.config.EOS
        b = phones.shape[0]
        y_pad = torch.arange(codes.shape[1], device=codes.device)[None] >= code_lengths[:, None]
        targets = F.pad(codes.masked_fill(y_pad, 0), (0, 1), value=0)
        targets[torch.arange(b), code_lengths] = eos
        inputs = targets[:, :-1]          # the codes themselves; position i predicts target i + 1
        n_text, n_audio = phones.shape[1], inputs.shape[1]
        x = self.embed_text(phones, bert)
        y = self.embed_audio(inputs)
        pad = torch.cat([
            torch.arange(n_text, device=phones.device)[None] >= phone_lengths[:, None],
            torch.arange(n_audio, device=codes.device)[None] >= code_lengths[:, None]], dim=1)
        allowed = self.prefix_mask(n_text, n_audio, phones.device)[None, None] & ~pad[:, None, None, :]
        # a fully blocked row (padding) would give NaN: let it see itself
        allowed = allowed | torch.eye(n_text + n_audio, dtype=torch.bool, device=phones.device)
        h = self._run(torch.cat([x, y], dim=1), allowed)
        last_phone = h[torch.arange(b, device=h.device), phone_lengths - 1]          # [B, d]
        logits = self.ar_predict_layer(torch.cat([last_phone[:, None], h[:, n_text:]], dim=1))
        valid = torch.arange(n_audio + 1, device=codes.device)[None] <= code_lengths[:, None]
        return logits, targets, valid

    def forward(self, phones, phone_lengths, bert, codes, code_lengths):
        """Summed cross-entropy over the batch, and top-1 accuracy over predicted tokens."""
        logits, targets, valid = self.teacher_forced(phones, phone_lengths, bert, codes, code_lengths)
        loss = F.cross_entropy(logits[valid], targets[valid], reduction="sum")
        acc = (logits[valid].argmax(-1) == targets[valid]).float().mean()
        return loss, acc

    # -- inference --------------------------------------------------------------------------
    def prefill(self, phones: list[torch.Tensor], bert: list[torch.Tensor], prompt: torch.Tensor,
                cache: KVCache | None = None) -> Prefill:
        """Texts and their prompts through the network, written into `cache` when given.

        phones[i] [N_i] holds reference + target phone ids, bert[i] [bert_dim, N_i], prompt
        [B, P] the audio tokens that follow. Shorter texts are left-padded and their padding is
        masked out, so every row sees exactly what it would see alone."""
        b, device = len(phones), phones[0].device
        n_text, n_prompt = max(int(p.shape[0]) for p in phones), prompt.shape[1]
        x = torch.zeros(b, n_text, self.config.embedding_dim, device=device)
        key_ok = torch.ones(b, n_text + n_prompt, dtype=torch.bool, device=device)
        for i, (p, e) in enumerate(zip(phones, bert)):
            x[i, n_text - p.shape[0]:] = self.embed_text(p[None], e[None])[0]
            key_ok[i, :n_text - p.shape[0]] = False
        xy = torch.cat([x.to(self.dtype), self.embed_audio(prompt)], dim=1)
        allowed = self.prefix_mask(n_text, n_prompt, device)[None] & key_ok[:, None, :]
        # a padding position's row would be fully blocked (NaN): let it see itself
        mask = (allowed | torch.eye(xy.shape[1], dtype=torch.bool, device=device))[:, None]
        return Prefill(self.step(xy, mask, cache), key_ok, n_text, prompt)

    def step(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        """Embedded positions x [B, T, d] through the network; the logits [B, V] after the last.
        With a cache, x holds only the new positions: their keys and values are written to it
        and they attend over what it holds (as `mask` [B or 1, 1, T, keys] allows)."""
        return self.ar_predict_layer(self._run(x, mask, cache)[:, -1])

    def kv_cache_bytes(self, rows: int, positions: int) -> int:
        """The most a `generate` call's KV cache takes: keys and values of every layer for `rows`
        items of `positions` (text + prompt + token cap) each."""
        c = self.config
        return 2 * c.n_layer * rows * positions * c.hidden_dim * self.bert_proj.weight.element_size()

    @torch.no_grad()
    def generate(self, phones: list[torch.Tensor], bert: list[torch.Tensor], prompt: torch.Tensor | None,
                 params: SamplingParams = SamplingParams(), seed: int | list[int] | None = 0,
                 use_cache: bool = True, max_tokens: int | list[int] = MAX_TOKENS,
                 min_tokens: int = MIN_TOKENS, loop: str = "auto") -> list[torch.Tensor]:
        """Sample semantic tokens for several texts at once, all continuing one reference prompt.

        phones[i] [N_i] holds reference + target phone ids, bert[i] [bert_dim, N_i], prompt [P]
        the reference's semantic tokens. Shorter texts are left-padded and their padding is
        masked out, so every item sees exactly what it would see alone. Returns each item's
        new tokens without EOS. `min_tokens` steps pass before EOS may be sampled. `seed` and
        `max_tokens` are one for the batch, or one per item: then each item samples and stops as
        it would alone, whatever else is in the batch (what a server batching requests needs).
        `loop`: "eager" (the CPU default; `model.decode.eager`), or "static" (the CUDA default):
        fixed-shape steps replayed as a CUDA graph on a GPU (`model.decode.static`); both give
        the same tokens.
        """
        b, device = len(phones), phones[0].device
        if loop == "auto":
            loop = "static" if device.type == "cuda" and use_cache else "eager"
        if loop not in ("eager", "static") or (loop == "static" and not use_cache):
            raise ValueError(f"loop must be auto, eager or static (static needs the cache), not {loop!r}")
        caps = torch.tensor(max_tokens if isinstance(max_tokens, list) else [max_tokens] * b, device=device)
        if isinstance(seed, list):
            generator = [torch.Generator(device=device).manual_seed(s) for s in seed]
        else:
            generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
        y = (prompt if prompt is not None else torch.zeros(0, device=device)).long()[None].expand(b, -1)
        batch = DecodeBatch(list(phones), list(bert), y, params, generator, caps, int(caps.max()), min_tokens)
        if loop == "static":
            return static.decode(self, batch, self.static_decoders)
        return eager.decode(self, batch, use_cache)
