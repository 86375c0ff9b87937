"""The GPT + SoVITS model: upstream key layout, checkpoint files (safe loading), synthesis."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT, run_cli, write
from torch.utils._python_dispatch import TorchDispatchMode

from clonebench.core.errors import UserError
from clonebench.instruments.references import PromptChoice
from clonebench.model import checkpoint
from clonebench.model.config import preset
from clonebench.model.decode import SamplingParams
from clonebench.model.gpt import Text2Semantic
from clonebench.model.sovits import SoVITS
from clonebench.model.spec import ModelSpec
from clonebench.model.synthesize import PROMPT_PAUSE_SAMPLES, SENTENCE_GAP_S, Synthesizer, samples_for_tokens
from clonebench.testing import corpus

KEYS = ROOT / "tests" / "fixtures" / "gpt-sovits-v2-keys"


def _tsv(name: str) -> list[tuple[str, list[int]]]:
    rows = []
    for line in (KEYS / name).read_text().splitlines():
        key, shape, _ = line.split("\t")
        rows.append((key, [int(v) for v in shape.strip("[]").split(",") if v.strip()]))
    return rows


def _layout(state: dict, prefix: str = "") -> list[tuple[str, list[int]]]:
    return [(prefix + k, list(v.shape)) for k, v in state.items()]


def test_v2_preset_has_upstream_keys_and_shapes():
    s_config, g_config = preset("v2")
    sovits, gpt = SoVITS(s_config), Text2Semantic(g_config)
    assert _layout(sovits.state_dict()) == _tsv("sovits-v2.tsv")          # same keys, shapes and order
    assert _layout(gpt.state_dict(), "model.") == _tsv("gpt-v2.tsv")
    inference = sum(v.numel() for k, v in sovits.state_dict().items() if not k.startswith("enc_q."))
    assert inference == 42_389_633
    assert sum(v.numel() for v in gpt.state_dict().values()) == 77_606_402
    # the speaker path adds exactly its own projection and nothing else
    s_config.sv_dim = 256
    extra = set(SoVITS(s_config).state_dict()) - set(sovits.state_dict())
    assert extra == {"sv_emb.weight", "sv_emb.bias"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    s_config, g_config = preset("tiny")
    sovits, gpt = SoVITS(s_config), Text2Semantic(g_config)
    sovits.quantizer.vq.layers[0]._codebook.embed.normal_()
    checkpoint.save_sovits(root / "s.pth", sovits, s_config, epoch=3, step=120)
    checkpoint.save_gpt(root / "g.ckpt", gpt, g_config, epoch=3)
    return {"root": root, "sovits": sovits, "gpt": gpt, "s_config": s_config, "g_config": g_config}


def test_static_decode_loop_gives_the_eager_tokens(tiny):
    """The fixed-shape loop a GPU replays as a CUDA graph (`loop="static"`) computes what the
    eager loop computes: greedy, seeded sampling per row, left-padded rows, rows with their own
    caps, rows finishing at different steps."""
    gpt = tiny["gpt"].eval()
    g = torch.Generator().manual_seed(3)
    phones = [torch.randint(0, 732, (n,), generator=g) for n in (27, 14, 20)]
    bert = [torch.randn(1024, p.shape[0], generator=g) for p in phones]
    prompt = torch.randint(0, 1024, (19,), generator=g)
    runs = [dict(params=SamplingParams(top_k=1), max_tokens=60),
            dict(params=SamplingParams(), seed=[4, 5, 6], max_tokens=[70, 25, 90]),
            dict(params=SamplingParams(top_p=0.8, temperature=0.9), seed=11, max_tokens=50)]
    for kw in runs:
        with torch.inference_mode():
            eager = gpt.generate(phones, bert, prompt, loop="eager", **kw)
            static = gpt.generate(phones, bert, prompt, loop="static", **kw)
        assert [t.tolist() for t in static] == [t.tolist() for t in eager], kw
    with torch.inference_mode():
        alone = gpt.generate(phones[:1], bert[:1], prompt, SamplingParams(top_k=1), max_tokens=60, loop="static")
    assert alone[0].tolist() == gpt.generate(phones[:1], bert[:1], prompt, SamplingParams(top_k=1), max_tokens=60,
                                             loop="eager")[0].tolist()
    # a later call of the same shape reuses the decoder (and its graphs): stale keys, stops and
    # seen tokens from the call before must not leak into it
    kept = set(gpt.static_decoders)
    kw = dict(params=SamplingParams(), seed=[6, 5, 4], max_tokens=[40, 60, 30])
    with torch.inference_mode():
        again = gpt.generate(phones[::-1], bert[::-1], prompt[:11], loop="static", **kw)
        eager = gpt.generate(phones[::-1], bert[::-1], prompt[:11], loop="eager", **kw)
    assert [t.tolist() for t in again] == [t.tolist() for t in eager]
    assert set(gpt.static_decoders) == kept                        # no new decoder was made
    with pytest.raises(ValueError, match="static needs the cache"):
        gpt.generate(phones, bert, prompt, loop="static", use_cache=False)


class _AtenOps(TorchDispatchMode):
    """Every aten op run inside it, with its outputs' shapes."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        shapes = tuple(tuple(t.shape) for t in (out if isinstance(out, (tuple, list)) else [out])
                       if isinstance(t, torch.Tensor))
        self.ops.append((func.overloadpacket.__name__, shapes))
        return out


# ops whose result the host must wait for (a value read back, or a shape that depends on data)
HOST_WAITS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "item"}


def test_static_steps_can_be_captured(tiny, monkeypatch):
    """What a CUDA graph needs, checked on a CPU: every static step (sampling included) runs the
    same ops on the same shapes, and none of them waits for the host. The continuous decoder's
    static step keeps its shapes while sentences join and leave."""
    from clonebench.model.decode import continuous, static

    gpt = tiny["gpt"].eval()
    g = torch.Generator().manual_seed(3)
    phones = [torch.randint(0, 732, (n,), generator=g) for n in (27, 14)]
    bert = [torch.randn(1024, p.shape[0], generator=g) for p in phones]
    prompt = torch.randint(0, 1024, (19,), generator=g)
    steps = {True: [], False: []}
    run = static.StaticDecoder.run

    def recorded(self, early):
        with _AtenOps() as mode:
            run(self, early)
        steps[early].append(mode.ops)

    monkeypatch.setattr(static.StaticDecoder, "run", recorded)
    with torch.inference_mode():
        gpt.generate(phones, bert, prompt, SamplingParams(top_p=0.9), seed=[1, 2], max_tokens=[30, 20], loop="static")
    for early, ops in steps.items():
        assert len(ops) >= 8 and all(o == ops[0] for o in ops), early
        assert not HOST_WAITS & {name for name, _ in ops[0]}
    assert {"exponential_", "sort", "topk"} <= {name for name, _ in steps[False][0]}   # sampling is in the step

    halves = {"_sample_all": [], "_forward_all": []}
    for name, seen in halves.items():
        def recorded_half(self, body=getattr(continuous.ContinuousDecoder, name), seen=seen):
            with _AtenOps() as mode:
                body(self)
            seen.append(mode.ops)

        monkeypatch.setattr(continuous.ContinuousDecoder, name, recorded_half)
    decoder = continuous.ContinuousDecoder(gpt, rows=2, capacity=96, loop="static")
    waiting = [(0, 25), (1, 12), (0, 18)]
    with torch.inference_mode():
        while waiting or decoder.busy:
            while waiting and decoder.free_rows:
                k, cap = waiting.pop(0)
                decoder.add(k, phones[k], bert[k], prompt, 0, cap)
            decoder.step()
    for name, ops in halves.items():
        assert len(ops) >= 25 and all(o == ops[0] for o in ops), name
        assert not HOST_WAITS & {op for op, _ in ops[0]}, name
    assert {"exponential_", "topk"} <= {op for op, _ in halves["_sample_all"][0]}


@pytest.mark.parametrize("rows,loop", [(2, "eager"), (3, "eager"), (3, "static")])
def test_continuous_batching_gives_each_sentence_its_tokens_alone(tiny, rows, loop):
    """Sentences join a running decode as rows free up and leave when they stop; each one's
    tokens are those `generate` gives it alone (different prompts, seeds and caps, greedy and
    sampled), whatever shared its rows. The static loop (every row at full capacity, what a GPU
    replays as a graph) gives the same tokens, and it never moves a row."""
    from clonebench.model.decode import ContinuousDecoder

    gpt = tiny["gpt"].eval()
    g = torch.Generator().manual_seed(5)
    phones = [torch.randint(0, 732, (n,), generator=g) for n in (27, 14, 20, 9, 31)]
    bert = [torch.randn(1024, p.shape[0], generator=g) for p in phones]
    prompts = [torch.randint(0, 1024, (n,), generator=g) for n in (19, 12, 19, 25, 8)]
    caps, seeds = [40, 12, 55, 30, 22], [4, 5, 6, 7, 8]
    for params in (SamplingParams(top_k=1), SamplingParams(), SamplingParams(top_p=0.8, temperature=0.9)):
        alone = [gpt.generate([p], [b], y, params, seed=s, max_tokens=m, loop="eager")[0].tolist()
                 for p, b, y, s, m in zip(phones, bert, prompts, seeds, caps)]
        decoder = ContinuousDecoder(gpt, rows=rows, capacity=128, params=params, loop=loop)
        waiting, said, joined_late = list(range(5)), {}, False
        while waiting or decoder.busy:
            while waiting and decoder.free_rows:
                k = waiting.pop(0)
                joined_late |= decoder.busy
                decoder.add(k, phones[k], bert[k], prompts[k], seeds[k], caps[k])
            for k, tokens in decoder.step():
                said[k] = tokens.tolist()
        assert joined_late and bool(decoder.moved) == (loop == "eager")   # joined running rows; compacted if eager
        assert [said[k] for k in range(5)] == alone, params
    with pytest.raises(ValueError, match="do not fit"):
        ContinuousDecoder(gpt, rows=1, capacity=32).add(0, phones[0], bert[0], prompts[0], 0, 40)
    with pytest.raises(ValueError, match="loop must be"):
        ContinuousDecoder(gpt, rows=1, capacity=32, loop="graph")


def test_round_trip_is_bit_exact(tiny):
    root = tiny["root"]
    s_config, s_state, raw = checkpoint.load_sovits(root / "s.pth")
    assert s_config == tiny["s_config"] and raw["content_module"] == "whisper-base"
    original = {k: v for k, v in tiny["sovits"].state_dict().items() if not k.startswith("enc_q.")}
    assert set(s_state) == set(original)
    for k, v in original.items():
        assert s_state[k].dtype == torch.float16 and torch.equal(s_state[k], v.half()), k
    # load -> save -> load gives the very same tensors
    model = SoVITS(s_config)
    checkpoint.load_into(model, s_state, root / "s.pth", ignore_prefixes=("enc_q.",))
    checkpoint.save_sovits(root / "s2.pth", model, s_config)
    _, again, _ = checkpoint.load_sovits(root / "s2.pth")
    assert all(torch.equal(again[k], s_state[k]) for k in s_state)
    g_config, g_state, g_raw = checkpoint.load_gpt(root / "g.ckpt")
    assert g_config == tiny["g_config"] and g_raw["data"]["max_sec"] == 54
    assert all(torch.equal(g_state[k], v.half()) for k, v in tiny["gpt"].state_dict().items())
    # the native checkpoint keeps fp32 and the training state exactly
    rng = torch.get_rng_state()
    checkpoint.save_native(root / "n.pt", sovits=tiny["sovits"], gpt=tiny["gpt"], sovits_config=s_config,
                           gpt_config=g_config, training={"step": 7, "rng": rng, "data_hash": "abc"})
    native = checkpoint.load_native(root / "n.pt")
    assert native["training"]["step"] == 7 and torch.equal(native["training"]["rng"], rng)
    assert all(torch.equal(native["sovits"][k], v) for k, v in tiny["sovits"].state_dict().items())
    assert native["sovits_config"] == s_config


def _upstream_style_file(src: Path, dst: Path) -> None:
    """Rewrite one of our files the way upstream writes it: config as a pickled `utils.HParams`."""
    module = types.ModuleType("utils")

    class HParams:
        def __init__(self, **kw):
            for k, v in kw.items():
                setattr(self, k, HParams(**v) if isinstance(v, dict) else v)

        def items(self):
            return self.__dict__.items()

    HParams.__module__, HParams.__qualname__ = "utils", "HParams"
    module.HParams = HParams
    sys.modules["utils"] = module
    try:
        obj = torch.load(src, weights_only=True)
        config = {k: v for k, v in obj["config"].items() if k != "clonebench"}
        torch.save({"weight": obj["weight"], "config": HParams(**config), "info": "3epoch_120iteration"}, dst)
    finally:
        del sys.modules["utils"]


def test_upstream_hparams_file_loads_without_upstream_code(tiny):
    path = tiny["root"] / "upstream.pth"
    _upstream_style_file(tiny["root"] / "s.pth", path)
    assert b"utils" in path.read_bytes() and "utils" not in sys.modules
    config, state, raw = checkpoint.load_sovits(path)
    assert isinstance(raw["model"], dict) and raw["model"]["upsample_rates"] == [10, 8, 2, 2, 2]
    ours = tiny["s_config"]
    for name in ("hidden_channels", "gin_channels", "n_layers", "ssl_dim", "content_dim", "style_hidden",
                 "n_flows", "flow_layers", "upsample_initial_channel", "n_symbols"):
        assert getattr(config, name) == getattr(ours, name), name
    checkpoint.load_into(SoVITS(config), state, path, ignore_prefixes=("enc_q.",))


def test_malicious_and_wrong_files_are_refused(tiny, tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    torch.save({"weight": {"enc_p.text_embedding.weight": torch.zeros(732, 4)}, "config": Payload()}, evil)
    with pytest.raises(checkpoint.CheckpointError, match="refused.*system"):
        checkpoint.load_sovits(evil)
    assert not marker.exists()
    # the CLI says so in one line and exits 2
    code, _, err = run_cli("synth", "--gpt", str(tiny["root"] / "g.ckpt"), "--sovits", str(evil), "--text", "hi",
                           "--ref-audio", str(evil), "--prompt-text", "x", "--out", str(tmp_path / "o.wav"),
                           check_json=False)
    assert not marker.exists()
    assert code == 2 and "Traceback" not in err

    data = (tiny["root"] / "s.pth").read_bytes()
    cases = {
        "v2pro.pth": (b"05" + data[2:], "v2Pro"),
        "v4.pth": (b"04" + data[2:], "v4"),
        "junk.pth": (b"this is not a checkpoint at all", "not a PyTorch checkpoint"),
        "empty.pth": (b"", "empty or truncated"),
        "truncated.pth": (data[: len(data) // 2], "not a readable checkpoint"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(checkpoint.CheckpointError, match=message):
            checkpoint.load_sovits(tmp_path / name)
    with pytest.raises(checkpoint.CheckpointError, match="not a SoVITS file"):
        checkpoint.load_sovits(tiny["root"] / "g.ckpt")
    with pytest.raises(checkpoint.CheckpointError, match="not a GPT"):
        checkpoint.load_gpt(tiny["root"] / "s.pth")
    # a v1 file (322 text symbols) is recognised and refused by name
    obj = torch.load(tiny["root"] / "s.pth", weights_only=True)
    obj["weight"]["enc_p.text_embedding.weight"] = torch.zeros(322, 64, dtype=torch.float16)
    torch.save(obj, tmp_path / "v1.pth")
    with pytest.raises(checkpoint.CheckpointError, match="v1"):
        checkpoint.load_sovits(tmp_path / "v1.pth")


def test_kv_cache_matches_full_recomputation_and_batching(tiny):
    gpt = tiny["gpt"].eval()
    g = torch.Generator().manual_seed(1)
    phones = [torch.randint(0, 732, (n,), generator=g) for n in (31, 18)]
    bert = [torch.randn(1024, p.shape[0], generator=g) for p in phones]
    prompt = torch.randint(0, 1024, (25,), generator=g)
    cached = gpt.generate(phones, bert, prompt, seed=5, max_tokens=80)
    full = gpt.generate(phones, bert, prompt, seed=5, max_tokens=80, use_cache=False)
    assert all(torch.equal(a, b) for a, b in zip(cached, full))
    from clonebench.model.decode import eager

    step = eager.CACHE_STEP
    try:  # a cache that starts small and grows several times while decoding gives the same tokens
        eager.CACHE_STEP = 3
        grown = gpt.generate(phones, bert, prompt, seed=5, max_tokens=80)
    finally:
        eager.CACHE_STEP = step
    assert all(torch.equal(a, b) for a, b in zip(grown, full)) and max(len(t) for t in grown) > 12
    assert all(len(t) > 11 for t in cached)                       # EOS is not allowed in the first steps
    greedy = SamplingParams(top_k=1)
    together = gpt.generate(phones, bert, prompt, greedy, max_tokens=40)
    alone = gpt.generate(phones[1:], bert[1:], prompt, greedy, max_tokens=40)
    assert torch.equal(together[1], alone[0])                      # padding never leaks into an item
    # fp16 matrices (weights from an fp16 file are kept exactly) decode the same tokens here
    import copy

    half = copy.deepcopy(gpt).half_matrices()
    assert half.h.layers[0].linear1.weight.dtype == torch.float16 and half.h.layers[0].norm1.weight.dtype == torch.float32
    assert torch.equal(half.generate(phones, bert, prompt, greedy, max_tokens=40)[0], together[0])


@pytest.fixture(scope="module")
def reference_clip(tmp_path_factory):
    prompts, audio = corpus.take_seconds(corpus.prompts("en"), 5)
    x = corpus.join(audio, gap_s=0.2)
    assert 3 <= len(x) / 16000 <= 10
    return write(tmp_path_factory.mktemp("ref") / "ref.wav", x), " ".join(p.text for p in prompts)


def test_synthesis_is_deterministic_and_length_follows_tokens(tiny, reference_clip):
    synth = Synthesizer(ModelSpec(tiny["root"] / "g.ckpt", tiny["root"] / "s.pth"))
    wav16, _ = sf.read(str(reference_clip[0]), dtype="float32")
    ref = synth.reference(PromptChoice(wav16, None, reference_clip[1], "en", "test"))
    assert ref.tokens.shape[0] == (len(wav16) + PROMPT_PAUSE_SAMPLES) // 640   # 25 Hz tokens of the clip + its pause
    text = "Good morning. Please hold the line, your call is important to us."
    a = synth.synthesize(text, "en", ref, seed=3, max_tokens=120)
    b = synth.synthesize(text, "en", ref, seed=3, max_tokens=120)
    c = synth.synthesize(text, "en", ref, seed=4, max_tokens=120)
    assert np.array_equal(a.audio, b.audio) and a.tokens == b.tokens
    assert not np.array_equal(a.audio, c.audio)
    assert a.sentences == ["Good morning.", "Please hold the line,", "your call is important to us."]
    assert set(a.timings) == {"frontend", "gpt", "sovits", "vocoder"} and 0 < a.ttfa_s <= sum(a.timings.values())
    # each sentence: 1280 samples per token, then a 0.3 s pause between sentences
    per_sentence = [samples_for_tokens(n) for n in _sentence_token_counts(synth, text, ref, seed=3)]
    assert len(a.audio) == sum(per_sentence) + int(SENTENCE_GAP_S * 32000) * (len(per_sentence) - 1)
    slow = synth.synthesize(text, "en", ref, seed=3, max_tokens=120, speed=0.5)
    assert len(slow.audio) > 1.8 * len(a.audio)


def test_bf16_runs_the_whole_model_in_bf16(tiny, reference_clip):
    """`--precision bf16` (for GPUs) converts every weight; a CPU runs it too, which is how CI
    keeps the path working: the audio is finite, float32, and as long as its tokens say."""
    synth = Synthesizer(ModelSpec(tiny["root"] / "g.ckpt", tiny["root"] / "s.pth", precision="bf16"))
    assert {p.dtype for m in (synth.gpt, synth.sovits) for p in m.parameters()} == {torch.bfloat16}
    wav16, _ = sf.read(str(reference_clip[0]), dtype="float32")
    ref = synth.reference(PromptChoice(wav16, None, reference_clip[1], "en", "test"))
    out = synth.synthesize("Good morning.", "en", ref, seed=3, max_tokens=40)
    assert out.audio.dtype == np.float32 and np.isfinite(out.audio).all() and np.abs(out.audio).max() > 0
    assert len(out.audio) == samples_for_tokens(len(out.tokens))
    with pytest.raises(UserError, match="use fp32, fp16 or bf16"):
        ModelSpec(tiny["root"] / "g.ckpt", tiny["root"] / "s.pth", precision="int8")


def _sentence_token_counts(synth, text, ref, seed):
    from clonebench.model.text.frontend import phonemize, split_sentences

    items = [phonemize(s, "en") for s in split_sentences(text, "en")]
    phones = [torch.tensor(ref.phones + p.ids) for p in items]
    bert = [torch.cat([ref.bert, synth.bert.for_runs(p.runs)], dim=1) for p in items]
    return [len(t) for t in synth.gpt.generate(phones, bert, ref.tokens, seed=seed, max_tokens=120)]


def test_speaker_embedding_path_changes_the_voice(tmp_path, reference_clip):
    torch.manual_seed(0)
    s_config, g_config = preset("tiny")
    s_config.sv_dim, s_config.sv_encoder = 256, "resemblyzer"
    sovits = SoVITS(s_config)
    sovits.quantizer.vq.layers[0]._codebook.embed.normal_()
    torch.nn.init.normal_(sovits.sv_emb.weight, std=0.5)   # as if trained: zero-init would be a no-op
    checkpoint.save_sovits(tmp_path / "s.pth", sovits, s_config)
    checkpoint.save_gpt(tmp_path / "g.ckpt", Text2Semantic(g_config), g_config)
    synth = Synthesizer(ModelSpec(tmp_path / "g.ckpt", tmp_path / "s.pth"))
    wav16, _ = sf.read(str(reference_clip[0]), dtype="float32")
    rng = np.random.default_rng(0)
    alice, bob = rng.normal(size=256), rng.normal(size=256)
    outs = [synth.synthesize("Hello there.", "en", synth.reference(PromptChoice(wav16, None, reference_clip[1], "en", "test", v)),
                             seed=0, max_tokens=40).audio for v in (alice, alice, bob)]
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    default = synth.reference(PromptChoice(wav16, None, reference_clip[1], "en", "test"))     # no embedding given: Resemblyzer of the clip
    assert default.ge.shape == (1, s_config.gin_channels, 1)


def test_cli_synth_writes_32k_wav(tiny, reference_clip, tmp_path):
    out = tmp_path / "out.wav"
    code, doc, err = run_cli("synth", "--gpt", str(tiny["root"] / "g.ckpt"), "--sovits", str(tiny["root"] / "s.pth"),
                             "--text", "你好，欢迎致电客服中心。", "--lang", "auto", "--ref-audio", str(reference_clip[0]),
                             "--prompt-text", reference_clip[1], "--prompt-lang", "en", "--out", str(out), "--json")
    assert code == 0, err
    audio, sr = sf.read(str(out))
    assert sr == 32000 and len(audio) == samples_for_tokens(doc["tokens"])   # one sentence: no pause
    assert doc["duration_s"] == pytest.approx(len(audio) / 32000, abs=1e-3)
    code, _, err = run_cli("synth", "--gpt", str(tiny["root"] / "g.ckpt"), "--sovits", str(tiny["root"] / "s.pth"),
                           "--text", "x" * 1200, "--ref-audio", str(reference_clip[0]), "--prompt-text", "hi",
                           "--out", str(tmp_path / "long.wav"), check_json=False)
    assert code == 2 and "limit is 1000" in err and not (tmp_path / "long.wav").exists()


@pytest.mark.parametrize("name", ["tiny", "v2"])
def test_vocoder_in_chunks_gives_the_one_pass_waveform(name):
    """Long sentences are vocoded a chunk at a time, each with its receptive field as context:
    the samples of one pass, to rounding. The bound covers what a change to one frame moves."""
    torch.manual_seed(0)
    s_config, _ = preset(name)
    dec = SoVITS(s_config).dec.eval()
    reach, hop = dec.receptive_frames(), 640
    z, g = torch.randn(1, s_config.inter_channels, 90), torch.randn(1, s_config.gin_channels, 1)
    with torch.no_grad():
        whole = dec(z, g)
        bumped = z.clone()
        bumped[:, :, 45] += 1.0
        moved = torch.nonzero((dec(bumped, g) - whole).abs()[0, 0] > 1e-6).flatten()
        assert len(moved) and 45 - reach <= moved.min() / hop and moved.max() / hop < 46 + reach
        chunked = dec.in_chunks(z, g, frames=16)
    assert chunked.shape == whole.shape == (1, 1, 90 * hop)
    assert (chunked - whole).abs().max() < 1e-5


def test_discriminator_and_losses():
    from clonebench.model.discriminator import (
        MultiPeriodDiscriminator,
        discriminator_loss,
        feature_matching_loss,
        generator_loss,
        kl_loss,
    )

    torch.manual_seed(0)
    d = MultiPeriodDiscriminator()
    real, fake = torch.randn(2, 1, 6400) * 0.1, torch.randn(2, 1, 6400) * 0.1
    r, f, fr, ff = d(real, fake)
    assert len(r) == 6 and all(s.shape[0] == 2 for s in r)           # scale + periods 2, 3, 5, 7, 11
    assert feature_matching_loss(fr, fr) == 0 < feature_matching_loss(fr, ff)
    ones = [torch.ones(2, 5)] * 6
    assert generator_loss(ones) == 0 and discriminator_loss(ones, [torch.zeros(2, 5)] * 6) == 0
    assert discriminator_loss([torch.zeros(2, 5)] * 6, ones) == 12      # everything wrong: 1 + 1 per discriminator
    m, mask = torch.randn(1, 4, 10), torch.ones(1, 1, 10)
    zero = torch.zeros(1, 4, 10)
    assert kl_loss(m, zero, m, zero, mask) < kl_loss(m + 1, zero, m, zero, mask)   # smallest when z_p sits on the prior mean


def test_sovits_trains_under_bf16_autocast_with_an_fp32_codebook():
    """What `train --device cuda` does (bf16 autocast), on the CPU: the quantizer's codebook, EMA
    statistics and dead-code expiry stay fp32, and the step runs and gives finite gradients.
    Before the quantizer kept its own dtype this raised 'Index put requires the source and
    destination dtypes match' in the dead-code expiry."""
    s_config, _ = preset("tiny")
    torch.manual_seed(0)
    model = SoVITS(s_config).train()
    b, frames = 2, 64
    ssl = torch.randn(b, s_config.ssl_dim, frames)
    spec = torch.rand(b, s_config.spec_channels, frames)
    phones = torch.randint(1, 700, (b, 12))
    lengths, phone_lengths = torch.tensor([frames, frames - 8]), torch.tensor([12, 9])
    book = model.quantizer.vq.layers[0]._codebook
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for step in range(3):                   # k-means first, then EMA steps with dead codes expiring
            audio, _, commit, _, (_, m_p, _, _) = model(ssl + step, spec, lengths, phones, phone_lengths)
    assert audio.dtype == torch.bfloat16
    assert all(t.dtype == torch.float32 for t in (book.embed, book.embed_avg, book.cluster_size))
    assert bool(book.inited.item()) and float(book.cluster_size.min()) >= book.dead_threshold - 1e-6
    (audio.float().pow(2).mean() + m_p.float().pow(2).mean() + commit).backward()
    grads = [p.grad for p in model.ssl_proj.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_position_table_cached_in_inference_still_trains():
    """The sine table is computed once and sliced; one built under inference_mode (serving) is
    rebuilt when autograd needs it (training the same module afterwards)."""
    from clonebench.model.gpt import SinePositions

    pos = SinePositions(8)
    with torch.inference_mode():
        first = pos(torch.zeros(1, 300, 8))
    x = torch.zeros(1, 5, 8)
    pos(x, start=3).sum().backward()
    assert pos.alpha.grad is not None and torch.equal(pos(x, start=3).detach(), first[:, 3:8].clone())
