"""`Synthesizer`: load a GPT + SoVITS pair once, then speak many texts in a reference voice.

Per request: text front end -> sentences -> GPT (batched over sentences, KV cache) -> SoVITS
prior and flow -> HiFi-GAN vocoder. The reference clip gives the prompt tokens (through the
SoVITS quantizer), the prompt phones and the style vector `ge`. Timings of each stage are
returned so that evaluation can report RTF and time to first audio.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from clonebench.core.errors import UserError

from . import checkpoint
from .config import HOP, SAMPLE_RATE, SEMANTIC_HZ
from .decode import MAX_TOKENS, SamplingParams
from .features import BertFeatures, check_compatible, content_extractor
from .gpt import Text2Semantic
from .layers import fold_weight_norm
from .sovits import SoVITS
from .spec import ModelSpec, load_timbre_model
from .spectrogram import linear_spectrogram
from .text.frontend import check_lang, phonemize, split_sentences, whole_text_language

if TYPE_CHECKING:
    from clonebench.instruments.references import PromptChoice

PROMPT_RANGE_S = (3.0, 10.0)
SENTENCE_GAP_S = 0.3
# A sentence read at a quarter of a normal rate (~12 phones/s) still fits: longer output is a
# runaway generation (repeating or babbling), so decoding stops there instead of at 60 s.
SECONDS_PER_PHONE_CAP = 0.33


SPEED_RANGE = (0.25, 4.0)


def check_speed(speed: float) -> float:
    lo, hi = SPEED_RANGE
    if not lo <= speed <= hi:
        raise UserError(f"speed {speed} is out of range {lo}-{hi:g}")
    return speed


def token_cap(n_phones: int, max_tokens: int = MAX_TOKENS) -> int:
    """The most semantic tokens a sentence of `n_phones` may take, never more than `max_tokens`."""
    return min(max_tokens, int(SEMANTIC_HZ * (1.0 + SECONDS_PER_PHONE_CAP * n_phones)))


@dataclass
class Reference:
    tokens: torch.Tensor        # [P] semantic tokens of the reference audio
    phones: list[int]           # prompt-text phone ids
    bert: torch.Tensor          # [1024, len(phones)]
    ge: torch.Tensor            # [1, gin, 1] style vector
    duration_s: float


@dataclass(frozen=True)
class PreparedSentence:
    """One sentence as the front end reads it, once (`Synthesizer.prepare`): all the GPT and
    SoVITS take of its text, carried from a server's admission to its worker unread again."""
    text: str
    phones: tuple[int, ...]     # phone ids
    bert: torch.Tensor          # [1024, len(phones)] BERT features (zeros outside Chinese runs)
    cap: int                    # the most semantic tokens it may take (`token_cap`)


@dataclass(frozen=True)
class Utterance:
    """A prepared sentence to say in one voice, with its own seed: the unit `say_sentences`,
    `join` and `vocode` take, which a server batches across requests."""
    sentence: PreparedSentence
    ref: Reference
    params: SamplingParams = SamplingParams()
    seed: int = 0
    speed: float = 1.0

    @property
    def positions(self) -> int:
        """The GPT positions it can take: its reference's phones and tokens, its own phones and
        its token cap (what a server's memory budget for a batch counts)."""
        return len(self.ref.phones) + len(self.ref.tokens) + len(self.sentence.phones) + self.sentence.cap


@dataclass
class Synthesis:
    audio: np.ndarray                      # float32 mono at 32 kHz
    sample_rate: int
    tokens: list[int]                      # semantic tokens per sentence, joined
    sentences: list[str]
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage
    ttfa_s: float = 0.0                    # time until the first sentence's audio was ready

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def rtf(self) -> float:
        return sum(self.timings.values()) / max(self.duration_s, 1e-9)


# upstream appends int(32000 * 0.3) zeros to the 16 kHz reference: 0.6 s
PROMPT_PAUSE_SAMPLES = 9600


class Synthesizer:
    def __init__(self, spec: ModelSpec, keep_content: bool = True):
        """Load `spec`'s pair. keep_content=False loads the content model (HuBERT: about 0.55 GB resident) only while a
        reference is prepared, as a server that prepares a voice once and then speaks does.

        precision: fp32, fp16 or bf16. Checkpoint weights are fp16 on disk, so fp16 keeps them
        exactly. On CUDA fp16 runs the whole model in fp16. On a CPU it stores only the GPT's
        matrices in fp16 (`Text2Semantic.half_matrices`): token-by-token decoding is bound by
        reading them from memory, while fp16 convolutions and norms on a CPU are slower than
        fp32 ones (measured in benchmarks/bench_model.py). bf16 runs the whole model in bf16
        anywhere; it is meant for GPUs (a CPU runs it, slowly)."""
        gpt_path, sovits_path, precision, content = spec.gpt, spec.sovits, spec.precision, spec.content
        if spec.threads:
            torch.set_num_threads(spec.threads)
        self._threads = torch.get_num_threads()
        self._sv_encoder = None
        self.timbre_source = spec.timbre
        self.device = torch.device(spec.device)
        s_config, s_state, _ = checkpoint.load_sovits(Path(sovits_path))
        g_config, g_state, _ = checkpoint.load_gpt(Path(gpt_path))
        self.sovits = SoVITS(s_config)
        checkpoint.load_into(self.sovits, s_state, Path(sovits_path), ignore_prefixes=("enc_q.",))
        del self.sovits.enc_q   # the posterior encoder only trains; release files leave it out too
        self.gpt = Text2Semantic(g_config)
        checkpoint.load_into(self.gpt, g_state, Path(gpt_path))
        for m in (self.sovits, self.gpt):
            m.to(self.device).eval()
        if precision == "bf16" or (precision == "fp16" and self.device.type == "cuda"):
            whole = torch.bfloat16 if precision == "bf16" else torch.float16
            self.gpt.to(whole)
            self.sovits.to(whole)
        elif precision == "fp16":
            self.gpt.half_matrices()
        self.precision = precision
        fold_weight_norm(self.sovits)   # inference never changes weights: compute g*v/|v| once
        self.paths = {"gpt": str(gpt_path), "sovits": str(sovits_path)}
        # the embedded Whisper encoder needs no folder; HuBERT-trained models need --content
        if content is None and s_config.ssl_extractor == "whisper-base":
            content = "whisper-base"
        self._content_spec, self._keep_content = content, keep_content
        self.content = content_extractor(content) if content else None   # loaded now: a bad folder fails at start
        self.bert = BertFeatures(spec.bert)
        # v2Pro/v2ProPlus: the ERes2NetV2 behind reference timbre vectors (`--timbre reference`)
        self.sv_model = None
        if s_config.is_pro:
            self.sv_model = load_timbre_model(spec.sv_model, s_config.sv_dim, s_config.version, spec.device,
                                              optional=spec.timbre == "speaker")

    @property
    def version(self) -> str:
        """The SoVITS file's GPT-SoVITS version: v2, v2Pro or v2ProPlus."""
        return self.sovits.config.version

    # -- reference ---------------------------------------------------------------------------
    def _content(self):
        if self.content is None and self._content_spec:
            self.content = content_extractor(self._content_spec)
        if self.content is None:
            raise UserError(f"{self.paths['sovits']} was trained on {self.sovits.config.ssl_extractor} "
                            "features: pass --content cnhubert:/path/to/chinese-hubert-base")
        check_compatible(self.content, self.sovits.config.ssl_extractor, self.sovits.config.ssl_dim,
                         self.paths["sovits"])
        return self.content

    @torch.no_grad()
    def reference(self, prompt: PromptChoice) -> Reference:
        """A 3-10 s reference clip and its transcript -> everything synthesis needs from it.

        As upstream: the content features see the 16 kHz clip followed by 0.6 s of silence (so
        the prompt's semantic tokens end in a pause), and the style spectrogram is made from the
        clip at 32 kHz (`wav32`, from the original file; the 16 kHz clip upsampled only when no
        32 kHz copy is given, which leaves the band above 8 kHz empty)."""
        from clonebench.core.audio import resample

        wav16, wav32, sv = prompt.wav16, prompt.wav32, prompt.speaker_embedding
        duration = len(wav16) / 16000
        lo, hi = PROMPT_RANGE_S
        if not lo <= duration <= hi:
            raise UserError(f"reference audio is {duration:.1f} s; it must be {lo:.0f}-{hi:.0f} s")
        dtype = next(self.sovits.parameters()).dtype
        padded = np.concatenate([wav16.astype(np.float32), np.zeros(PROMPT_PAUSE_SAMPLES, np.float32)])
        ssl = self._content().encode(padded)[None].to(self.device, dtype)
        if not self._keep_content:
            self.content = None
            gc.collect()
        tokens = self.sovits.extract_latent(ssl)[0, 0]
        if wav32 is None:
            wav32 = resample(wav16, 16000, SAMPLE_RATE)
        wav32_t = torch.from_numpy(np.asarray(wav32, dtype=np.float32))[None].to(self.device)
        sv_t = None
        if self.sovits.config.is_pro:
            sv_t = self._timbre(prompt, wav32)[None].to(self.device)
        elif self.sovits.config.sv_dim:
            sv_t = torch.from_numpy(self._speaker_embedding(wav16, sv))[None].to(self.device)
        ge = self.sovits.style(linear_spectrogram(wav32_t).to(dtype), sv=None if sv_t is None else sv_t.to(dtype))
        ph = phonemize(prompt.text, prompt.lang)
        return Reference(tokens, ph.ids, self.bert.for_runs(ph.runs), ge, duration)

    def _timbre(self, prompt: PromptChoice, wav32: np.ndarray) -> torch.Tensor:
        """The v2Pro timbre vector of a voice: from the reference clip at 32 kHz (upstream's
        way), or the speaker's timbre-library entry (`--timbre speaker`)."""
        if self.timbre_source == "speaker":
            if prompt.timbre is None:
                raise UserError(f"{prompt.source}: --timbre speaker needs the speaker's timbre-library entry: "
                                "vet the speaker with --sv-model, or use --timbre reference")
            vector = torch.from_numpy(np.asarray(prompt.timbre, dtype=np.float32))
        else:
            vector = self.sv_model.timbre(wav32)
        if vector.shape[0] != self.sovits.config.sv_dim:
            raise UserError(f"{prompt.source}: timbre vector is {vector.shape[0]}-d; the model takes "
                            f"{self.sovits.config.sv_dim}-d")
        return vector

    def _speaker_embedding(self, wav16: np.ndarray, sv: np.ndarray | None) -> np.ndarray:
        if sv is None:
            if self.sovits.config.sv_encoder not in ("", "resemblyzer"):
                raise UserError(f"this model takes {self.sovits.config.sv_encoder} speaker embeddings: pass one")
            if self._sv_encoder is None:
                from clonebench.instruments.speakers import SpeakerEncoder

                self._sv_encoder = SpeakerEncoder()
                torch.set_num_threads(self._threads)   # the encoder sets its own thread count
            sv = self._sv_encoder.embedding(wav16)
        sv = np.asarray(sv, dtype=np.float32).ravel()
        if sv.shape[0] != self.sovits.config.sv_dim:
            raise UserError(f"speaker embedding is {sv.shape[0]}-d; the model expects {self.sovits.config.sv_dim}-d")
        return sv / max(float(np.linalg.norm(sv)), 1e-9)

    # -- synthesis ---------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(self, text: str, lang: str, ref: Reference, params: SamplingParams = SamplingParams(),
                   seed: int = 0, speed: float = 1.0, noise_scale: float = 0.5, batch_size: int = 4,
                   max_tokens: int = MAX_TOKENS) -> Synthesis:
        lang = check_lang(lang)
        check_speed(speed)
        timings = {"frontend": 0.0, "gpt": 0.0, "sovits": 0.0, "vocoder": 0.0}
        start = t0 = time.perf_counter()
        items = self.prepare(text, lang, max_tokens)
        timings["frontend"] = time.perf_counter() - t0
        generator = torch.Generator(device=self.device).manual_seed(seed)
        gap = np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), dtype=np.float32)
        pieces, all_tokens, ttfa = [], [], None
        for b in range(0, len(items), batch_size):
            batch = items[b:b + batch_size]
            t0 = time.perf_counter()
            phones, bert = self._after_prompt(ref, batch)
            cap = max(s.cap for s in batch)
            new = self.gpt.generate(phones, bert, ref.tokens, params, seed=seed + b, max_tokens=cap)
            timings["gpt"] += time.perf_counter() - t0
            for s, tokens in zip(batch, new):
                tokens = self._at_least_one(tokens)
                t0 = time.perf_counter()
                z = self.sovits.latent(tokens[None, None], torch.tensor([s.phones], device=self.device), ref.ge,
                                       noise_scale, speed, generator)
                t1 = time.perf_counter()
                wav = self.sovits.dec.in_chunks(z, ref.ge)[0, 0].float().cpu().numpy()
                t2 = time.perf_counter()
                timings["sovits"] += t1 - t0
                timings["vocoder"] += t2 - t1
                if ttfa is None:
                    ttfa = t2 - start
                pieces += [wav, gap]
                all_tokens += tokens.tolist()
        audio = np.concatenate(pieces[:-1]).astype(np.float32)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > 1.0:
            audio /= peak
        return Synthesis(audio, SAMPLE_RATE, all_tokens, [s.text for s in items], timings, ttfa or 0.0)

    @torch.no_grad()
    def say_sentences(self, utterances: list[Utterance], noise_scale: float = 0.5, on_done=None) -> list[np.ndarray]:
        """Several sentences, possibly in several voices, in as few GPT passes as possible: those
        that share a reference and sampling settings decode together. Each has its own seed for
        the GPT and for SoVITS, so its audio is the same whether it ran alone or batched.
        Returns each one's waveform (float32, 32 kHz, peak at most 1); `on_done(k, wav)`, when
        given, hears of each one as soon as it is ready (a server streams it on at once)."""
        out: list[np.ndarray | None] = [None] * len(utterances)
        groups: dict[tuple, list[int]] = {}
        for k, u in enumerate(utterances):
            groups.setdefault((id(u.ref), u.params), []).append(k)
        for members in groups.values():
            ref, params = utterances[members[0]].ref, utterances[members[0]].params
            phones, bert = self._after_prompt(ref, [utterances[k].sentence for k in members])
            new = self.gpt.generate(phones, bert, ref.tokens, params, seed=[utterances[k].seed for k in members],
                                    max_tokens=[utterances[k].sentence.cap for k in members])
            for k, tokens in zip(members, new):
                out[k] = self.vocode(utterances[k], tokens, noise_scale)
                if on_done is not None:
                    on_done(k, out[k])
        return out

    @torch.no_grad()
    def vocode(self, u: Utterance, tokens: torch.Tensor, noise_scale: float = 0.5) -> np.ndarray:
        """One sentence's semantic tokens -> its waveform (float32, 32 kHz, peak at most 1),
        SoVITS drawing its noise from the sentence's own seed."""
        tokens = self._at_least_one(tokens.to(self.device))
        generator = torch.Generator(device=self.device).manual_seed(u.seed)
        z = self.sovits.latent(tokens[None, None], torch.tensor([u.sentence.phones], device=self.device), u.ref.ge,
                               noise_scale, u.speed, generator)
        wav = self.sovits.dec.in_chunks(z, u.ref.ge)[0, 0].float().cpu().numpy()
        peak = float(np.abs(wav).max()) if wav.size else 0.0
        return (wav / peak if peak > 1.0 else wav).astype(np.float32)

    @torch.no_grad()
    def join(self, decoder, key, u: Utterance) -> bool:
        """Start `u` in a running `model.decode.ContinuousDecoder` under `key`; False when it is
        too long for the decoder's rows (then it is said on its own)."""
        (phones,), (bert,) = self._after_prompt(u.ref, [u.sentence])
        if not decoder.fits(len(phones), len(u.ref.tokens), u.sentence.cap):
            return False
        decoder.add(key, phones, bert, u.ref.tokens, u.seed, u.sentence.cap)
        return True

    # -- the pieces both entry points share ---------------------------------------------------
    def prepare(self, text: str, lang: str, max_tokens: int = MAX_TOKENS,
                max_chars: int | None = None) -> list[PreparedSentence]:
        """`text` cut into sentences, each read by the front end once: the one way text enters
        synthesis (`synthesize`, and a server at admission). Raises UserError for a language or
        a text the front end cannot read, or a word longer than `max_chars` (the per-sentence cap)."""
        lang = whole_text_language(text, lang)
        sentences = split_sentences(text, lang, max_chars)
        if not sentences:
            raise UserError("empty text")
        return [self._sentence(s, lang, max_tokens) for s in sentences]

    def _sentence(self, text: str, lang: str, max_tokens: int) -> PreparedSentence:
        ph = phonemize(text, lang)
        ids = ph.ids
        return PreparedSentence(text, tuple(ids), self.bert.for_runs(ph.runs), token_cap(len(ids), max_tokens))

    def _after_prompt(self, ref: Reference, sentences: list[PreparedSentence]):
        """The GPT's inputs: the reference's phones and BERT features, then each sentence's."""
        phones = [torch.tensor(ref.phones + list(s.phones), device=self.device) for s in sentences]
        bert = [torch.cat([ref.bert, s.bert], dim=1).to(self.device) for s in sentences]
        return phones, bert

    def _at_least_one(self, tokens: torch.Tensor) -> torch.Tensor:
        """SoVITS needs a token: a sentence that stopped at once says one code-0 frame."""
        return tokens if tokens.numel() else torch.zeros(1, dtype=torch.long, device=self.device)


def samples_for_tokens(n_tokens: int, speed: float = 1.0) -> int:
    """Audio length SoVITS produces for n semantic tokens (2 frames of 640 samples each at speed 1)."""
    frames = 2 * n_tokens if speed == 1 else int(2 * n_tokens / speed) + 1
    return frames * HOP
