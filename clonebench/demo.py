"""The built-in demo: build a corpus from Debian's speech packages (`testing.demo_corpus`), vet
each speaker, then score two "systems" against the voices vetting accepted.

datasets/demo/eval/
  system_a/  Allison's and June's prompts that vetting never saw, as if a good system had
             said the eval texts (with a manifest naming speaker, language and text)
  system_b/  the same items after a bad release: hiss at 10 dB SNR and a hot output stage

system_a is scored first; system_b is compared with it, paired by item, through the
regression gate. References come from the store: each speaker's accepted clips.
It lives with the commands because it is the one place that joins the test fixtures to the stages.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clonebench.testing import corpus, degrade
from clonebench.testing.demo_corpus import build_demo, write_audio

log = logging.getLogger(__name__)
GATE = "sim<-0.02,wer>+0.01,dnsmos_ovrl<-0.1"
LABELS = ("demo-system-a", "demo-system-b")


def run_demo(root: Path) -> list:
    """Vet each demo speaker; returns their `VetResult`s."""
    from clonebench.curate.vet import VetOptions, vet

    root = Path(root)
    speakers = build_demo(root)
    results = []
    for name, info in speakers.items():
        log.info("vetting demo speaker %s", name)
        opts = VetOptions(speaker=name, db=root / "clonebench.duckdb", lang=info["lang"], transcripts=info["transcripts"],
                          inputs=[info["dir"]])
        results.append(vet(opts))
    return results


def build_eval_demo(root: Path) -> tuple[Path, Path]:
    base = root / "demo" / "eval"
    a, b = base / "system_a", base / "system_b"
    if (base / ".complete").exists():
        return a, b
    lines = []
    # prompts from the end of each list: the vetting demo takes its audio from the start
    for speaker, lang, prompts in [("allison", "en", corpus.prompts("en")[-12:]),
                                   ("june", "fr", [p for p in corpus.prompts("fr") if len(p.text.split()) >= 5][-8:])]:
        for k, p in enumerate(prompts):
            x = corpus.load_prompt(p)
            name = f"{speaker}_{k:02d}.wav"
            write_audio(a / name, x)
            write_audio(b / name, degrade.hard_clip(degrade.add_white_noise(x, 10.0, seed=k), 6.0))
            lines.append(f"{name}\t{speaker}\t{lang}\t{p.text}")
    for folder in (a, b):
        (folder / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (base / ".complete").write_text("ok\n")
    return a, b


def run_eval_demo(root: Path) -> list:
    """Evaluate system A, then system B against it with the gate; returns their `EvaluationResult`s.
    A finished demo run is reused, so running the demo again adds no runs."""
    from clonebench.store import Store

    from clonebench.evaluate.result import load_result
    from clonebench.evaluate.run import EvalOptions, evaluate_audio
    from clonebench.evaluate.score import Models

    root = Path(root)
    db = root / "clonebench.duckdb"
    a, b = build_eval_demo(root)
    docs, models, baseline = [], None, None
    for label, folder in zip(LABELS, (a, b)):
        with Store(db) as store:
            done = store.newest_complete_run(label)
            if done:
                docs.append(load_result(store, done))
                baseline = done
                continue
        log.info("scoring demo %s", label)
        models = models or Models.load()
        opts = EvalOptions(db=db, audio_dir=folder, label=label, baseline_run=baseline, fail_on=GATE if baseline else None)
        docs.append(evaluate_audio(opts, models))
        baseline = docs[-1].run_id
    return docs
