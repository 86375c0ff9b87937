"""Evaluation speed and metric validity. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_eval.py [--items 100]

1. Scoring cost: N utterances of about 5 s (Allison's prompts, joined in pairs, scored as if
   a system had made them, with their true transcripts) through `evaluate_audio`: wall time
   with models loaded (goal: 100 items in <= 3 min), and the cost of each scorer per second of
   audio (ASR, speaker embedding, DNSMOS, VAD).
2. Agreement of our WER with plain `jiwer` on Whisper-normalized text: per item and corpus.
3. Similarity separation: genuine items against impostors (the French speaker's prompts and
   espeak voices), AUC and EER.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from clonebench.evaluate.run import EvalOptions, evaluate_audio  # noqa: E402
from clonebench.evaluate.score import Models  # noqa: E402
from clonebench.evaluate.stats import equal_error_rate, roc_auc  # noqa: E402
from clonebench.testing import corpus  # noqa: E402

SR = 16000


def build(root: Path, n: int) -> tuple[list[np.ndarray], list[str]]:
    en = corpus.prompts("en")
    for k, p in enumerate(en[-8:]):
        sf.write(root / "ref" / f"r{k}.wav", corpus.load_prompt(p), SR)
    lines, audio = [], []
    i = 0
    while len(audio) < n and i + 1 < len(en) - 8:
        parts, texts = [], []
        while sum(len(x) for x in parts) / SR < 3.5 and i < len(en) - 8:  # about 5 s per item
            x = corpus.load_prompt(en[i])
            i += 1
            if len(x) / SR <= 7.0:  # long prompts would make items far longer than 5 s
                parts.append(x)
                texts.append(en[i - 1].text)
        if not parts:
            break
        x = corpus.join(parts, gap_s=0.3)
        name = f"g{len(audio):03d}.wav"
        sf.write(root / "items" / name, x, SR)
        lines.append(f"{name}\tallison\ten\t{' '.join(texts)}")
        audio.append(x)
    fr = corpus.prompts("fr")
    for k, p in enumerate(fr[:20]):
        sf.write(root / "items" / f"i_fr{k:02d}.wav", corpus.load_prompt(p), SR)
        lines.append(f"i_fr{k:02d}.wav\tallison\tfr\t{p.text}")
    for k, voice in enumerate(["en+m1", "en+m3", "en+f2", "en+f4", "fr+m2", "fr+f3"]):
        text = en[k].text
        sf.write(root / "items" / f"i_es{k}.wav", corpus.espeak(text, voice), SR)
        lines.append(f"i_es{k}.wav\tallison\t{voice[:2]}\t{text}")
    (root / "items" / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return audio, lines


def per_component(models: Models, audio: list[np.ndarray]) -> dict[str, float]:
    seconds = sum(len(x) for x in audio) / SR
    out = {}
    for name, fn in [("asr (tiny.en, per item)", lambda x: models.transcriber.transcribe_each([x], "en")),
                     ("speaker embedding", models.encoder.embedding),
                     ("dnsmos", models.dnsmos.score),
                     ("vad", models.vad.probabilities)]:
        t = time.perf_counter()
        for x in audio:
            fn(x)
        out[name] = (time.perf_counter() - t) / seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "ref").mkdir()
        (root / "items").mkdir()
        audio, _ = build(root, args.items)
        seconds = sum(len(x) for x in audio) / SR
        print(f"genuine items: {len(audio)}, {seconds:.0f} s of audio, mean {seconds / len(audio):.1f} s; 26 impostor items")

        t = time.perf_counter()
        models = Models.load()
        models.transcriber.model("whisper-tiny.en")
        models.transcriber.model("whisper-base")
        print(f"model load: {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        doc = evaluate_audio(EvalOptions(db=root / "s.duckdb", audio_dir=root / "items",
                                         references={"allison": [root / "ref"]}), models).to_json()
        wall = time.perf_counter() - t
        genuine = [r for r in doc["items"] if Path(r["path"]).name.startswith("g")]
        impostor = [r for r in doc["items"] if Path(r["path"]).name.startswith("i_")]
        total_s = sum(r["duration_s"] for r in doc["items"])
        print(f"evaluate (all {len(doc['items'])} items, {total_s:.0f} s, incl. aggregation and bootstrap): {wall:.1f} s "
              f"= {wall / total_s:.3f} s per audio-second")
        g_s = sum(r["duration_s"] for r in genuine)
        print(f"  projected for the {len(genuine)} genuine items alone: {wall * g_s / total_s:.1f} s (goal <= 180 s)")
        for name, cost in per_component(models, audio).items():
            print(f"  {name:<24} {cost:.4f} s per audio-second")

        import jiwer
        from whisper.normalizers import EnglishTextNormalizer

        norm = EnglishTextNormalizer()
        diffs, refs, hyps = [], [], []
        for r in genuine:
            ref, hyp = norm(r["text"]), norm(r["hyp_text"])
            diffs.append(abs(r["wer"] - jiwer.wer(ref, hyp)))
            refs.append(ref)
            hyps.append(hyp)
        ours = sum(r["subs"] + r["dels"] + r["ins"] for r in genuine) / sum(r["hits"] + r["subs"] + r["dels"] for r in genuine)
        print(f"jiwer agreement: max |ours - jiwer| per item {max(diffs):.2e} over {len(diffs)} items; "
              f"corpus WER ours {ours:.4f}, jiwer {jiwer.wer(refs, hyps):.4f}; "
              f"mean per-utterance WER {np.mean([r['wer'] for r in genuine]):.4f}")

        gs = np.array([r["sim"] for r in genuine])
        im = np.array([r["sim"] for r in impostor])
        print(f"similarity: genuine {gs.mean():.3f} ± {gs.std():.3f} (n={len(gs)}), impostor {im.mean():.3f} ± {im.std():.3f} "
              f"(n={len(im)}); AUC {roc_auc(gs, im):.3f}, EER {equal_error_rate(gs, im) * 100:.1f} %")
        o = doc["speakers"]["allison"]
        print("run figures (allison, all items): " + ", ".join(
            f"{m} {o[m]['value']:.3f} [{o[m]['lo']:.3f}, {o[m]['hi']:.3f}]" for m in ("sim", "sim_o", "wer", "cer", "dnsmos_ovrl")))


if __name__ == "__main__":
    main()
