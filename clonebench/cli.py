"""The `clonebench` command: a thin typer layer over the library functions."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .config import default_db_path
from .errors import UserError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Vet, train, evaluate and report few-shot voice-cloning data and models.")
_state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
         quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors on stderr.")) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("faster_whisper", "speechbrain"):  # one line per file or per fetched file otherwise
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)


def _run(fn, *args, **kwargs):
    """Run a library call: user errors become one line on stderr and exit 2... or 1 for a crash."""
    try:
        return fn(*args, **kwargs)
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished work is kept; run the same command again to resume", err=True)
        raise typer.Exit(130)
    except Exception as e:
        if _state["debug"]:
            raise
        typer.echo(f"crash: {type(e).__name__}: {e} (run with --debug for the traceback)", err=True)
        raise typer.Exit(1)


def _report(make, *args) -> str | None:
    """Write a report after a command; a report that fails is a warning, never the command's failure."""
    try:
        return str(make(*args))
    except Exception as e:  # the command's own work is done and stored: keep its exit status
        if _state["debug"]:
            raise
        logging.getLogger("clonebench").warning("report not written: %s: %s", type(e).__name__, e)
        return None


ASR_HELP = "faster-whisper (embedded, default) or openai-whisper:FILE.pt (a local openai-whisper checkpoint)."
ENCODER_HELP = ("resemblyzer (embedded, default), ecapa:DIR (a local speechbrain spkrec-ecapa-voxceleb folder) "
                "or wavlm:DIR (a transformers WavLMForXVector folder).")


@app.command()
def vet(
    inputs: Optional[list[Path]] = typer.Argument(None, help="Audio files or folders (searched recursively)."),
    speaker: Optional[str] = typer.Option(None, "--speaker", "-s", help="Speaker name (letters, digits, _ - .)."),
    lang: str = typer.Option("en", "--lang", help="Expected language: en, zh, fr, ... or auto."),
    transcripts: Optional[Path] = typer.Option(None, "--transcripts", help="TSV of name<TAB>text for the files "
                                               "(a .lab or .txt file beside an audio file is read too)."),
    list_file: Optional[Path] = typer.Option(None, "--list", help="A GPT-SoVITS list (path|speaker|lang|text): vet "
                                             "every speaker in it, instead of INPUTS and --speaker."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="A rule-set TOML to use instead of the built-in one."),
    min_clip: float = typer.Option(3.0, "--min-clip", help="Slicer: shortest clip, seconds."),
    max_clip: float = typer.Option(15.0, "--max-clip", help="Slicer: longest clip, seconds."),
    silence_db: float = typer.Option(-40.0, "--silence-db", help="Slicer: RMS threshold for silence, dBFS."),
    max_recording_min: float = typer.Option(20.0, "--max-recording-min", help="Refuse recordings longer than this."),
    asr: Optional[str] = typer.Option(None, "--asr", envvar="CLONEBENCH_ASR", help=ASR_HELP),
    speaker_encoder: Optional[str] = typer.Option(None, "--speaker-encoder", envvar="CLONEBENCH_SPEAKER_ENCODER", help=ENCODER_HELP),
    overlap: Optional[str] = typer.Option(None, "--overlap", envvar="CLONEBENCH_OVERLAP",
                                          help="pyannote:PATH: overlapped-speech evidence for the multiple_speakers screen."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the speaker and dataset reports."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Screen recordings of one speaker (or every speaker of a --list) and decide which clips are fit for cloning."""
    from curate.slicer import SliceConfig
    from curate.vet import VetOptions, vet as run_vet, vet_list

    opts = _run(VetOptions, speaker=speaker, db=db, lang=lang, transcripts=transcripts, list_file=list_file,
                inputs=list(inputs or []), rules=rules,
                slicing=SliceConfig(threshold_db=silence_db, min_clip_s=min_clip, max_clip_s=max_clip),
                max_recording_min=max_recording_min, asr=asr, speaker_encoder=speaker_encoder, overlap=overlap)
    result = _run(vet_list if list_file else run_vet, opts)
    docs = result["speakers"] if list_file else [result]
    if not no_report:
        from reports.dataset import dataset_report
        from reports.speaker import speaker_report

        result["reports"] = [p for p in [*(_report(speaker_report, db, d["speaker"]) for d in docs),
                                         _report(dataset_report, db)] if p]
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        from .summary import print_vet_summary

        for d in docs:
            print_vet_summary({**d, "errors": result["errors"] if d is docs[-1] else []})
        for path in result.get("reports", []):
            typer.echo(f"report: {path}")


@app.command()
def demo(
    data: Path = typer.Option(Path("datasets"), "--data", help="Data root: the demo corpus and store go here."),
    as_json: bool = typer.Option(False, "--json", help='Print {"vet": [...], "evaluate": [...]} as JSON.'),
) -> None:
    """Build the demo corpus from Debian's speech packages, vet it, and evaluate two demo systems."""
    from curate.demo import run_demo
    from evaluate.demo import run_eval_demo

    from reports.dataset import dataset_report
    from reports.evaluation import eval_report
    from reports.speaker import speaker_report

    results = _run(run_demo, data)
    evals = _run(run_eval_demo, data)
    db = Path(data) / "clonebench.duckdb"
    reports = [_report(speaker_report, db, r["speaker"]) for r in results] + [_report(dataset_report, db)]
    reports += [_report(eval_report, db, doc["run_id"]) for doc in evals]
    reports = [p for p in reports if p]
    if as_json:
        typer.echo(json.dumps({"vet": results, "evaluate": evals, "reports": reports}, ensure_ascii=False, indent=1,
                              default=str))
    else:
        from .summary import print_eval_summary, print_vet_summary

        for r in results:
            print_vet_summary(r)
        for doc in evals:
            print_eval_summary(doc)
        for path in reports:
            typer.echo(f"report: {path}")


GATE_FAILED = 3  # exit status when the regression gate fails (0 ok, 1 crash, 2 usage error)


@app.command()
def evaluate(
    audio_dir: Optional[Path] = typer.Option(None, "--audio-dir", help="Audio mode: a folder of audio made by any system."),
    gpt: Optional[Path] = typer.Option(None, "--gpt", help="Model mode: GPT .ckpt to synthesize the eval set with."),
    sovits: Optional[Path] = typer.Option(None, "--sovits", help="Model mode: SoVITS .pth."),
    baseline_gpt: Optional[Path] = typer.Option(None, "--baseline-gpt", help="Model mode: baseline GPT .ckpt to compare with."),
    baseline_sovits: Optional[Path] = typer.Option(None, "--baseline-sovits", help="Model mode: baseline SoVITS .pth."),
    eval_set: str = typer.Option("default", "--eval-set", help="Model mode: default, en, zh, zh-en, or a TSV id<TAB>lang<TAB>text."),
    speakers: Optional[str] = typer.Option(None, "--speakers", help="Model mode: comma-separated speakers (default: all with accepted clips)."),
    content: Optional[str] = typer.Option(None, "--content", help="Model mode: content features (whisper-base or cnhubert:/folder)."),
    bert: Optional[Path] = typer.Option(None, "--bert", help="Model mode: chinese-roberta-wwm-ext-large folder."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Model mode: CPU threads for synthesis."),
    device: str = typer.Option("cpu", "--device", help="Model mode: cpu or cuda."),
    precision: str = typer.Option("fp32", "--precision", help="Model mode: fp32, or fp16 (on a CPU: the GPT only)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the evaluation report."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="TSV file<TAB>speaker<TAB>lang<TAB>text[<TAB>prompt[<TAB>synth_s[<TAB>ttfa_s]]] "
                                            "(default: AUDIO_DIR/manifest.tsv)."),
    reference: list[str] = typer.Option([], "--reference", help="speaker=path (file or folder) for similarity; "
                                        "default: the speaker's accepted clips in the store. Repeatable."),
    baseline_run: Optional[str] = typer.Option(None, "--baseline-run", help="Compare paired with this earlier run."),
    fail_on: Optional[str] = typer.Option(None, "--fail-on", help='Regression gate, e.g. "sim<-0.02,wer>+0.01": exit 3 when '
                                          "a difference is significantly worse and beyond its threshold."),
    gate_scope: str = typer.Option("overall", "--gate-scope", help="overall, or speaker: every speaker's difference is gated too."),
    label: Optional[str] = typer.Option(None, "--label", help="A name for this run in `clonebench runs`."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish a run that was interrupted."),
    asr: Optional[str] = typer.Option(None, "--asr", envvar="CLONEBENCH_ASR", help=ASR_HELP),
    speaker_encoder: Optional[str] = typer.Option(None, "--speaker-encoder", envvar="CLONEBENCH_SPEAKER_ENCODER", help=ENCODER_HELP),
    utmos: Optional[str] = typer.Option(None, "--utmos", envvar="CLONEBENCH_UTMOS", help="DIR: a local UTMOS folder; adds the utmos metric."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    n_boot: int = typer.Option(2000, "--n-boot", help="Bootstrap resamples."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Score synthesized speech: speaker similarity, Whisper WER/CER, DNSMOS, RTF; CIs, baseline, gate."""
    from evaluate.run import EvalOptions, evaluate_audio, parse_references

    if gate_scope not in ("overall", "speaker"):
        typer.echo("error: --gate-scope is overall or speaker", err=True)
        raise typer.Exit(2)
    if n_boot < 100:
        typer.echo("error: --n-boot must be at least 100", err=True)
        raise typer.Exit(2)
    if (audio_dir is None) == (gpt is None and sovits is None):
        typer.echo("error: give --audio-dir (audio mode) or --gpt and --sovits (model mode)", err=True)
        raise typer.Exit(2)
    if audio_dir is None:
        from evaluate.model_mode import ModelEvalOptions, evaluate_model

        if gpt is None or sovits is None:
            typer.echo("error: model mode needs both --gpt and --sovits", err=True)
            raise typer.Exit(2)
        mopts = ModelEvalOptions(db=db, gpt=gpt, sovits=sovits, baseline_gpt=baseline_gpt, baseline_sovits=baseline_sovits,
                                 eval_set=eval_set, speakers=[s for s in (speakers or "").split(",") if s],
                                 content=content, bert=bert, threads=threads, device=device, precision=precision,
                                 seed=seed, label=label,
                                 fail_on=fail_on, gate_scope=gate_scope, n_boot=n_boot,
                                 asr=asr, speaker_encoder=speaker_encoder, utmos=utmos)
        doc = _run(evaluate_model, mopts)
    else:
        refs = _run(parse_references, reference)
        opts = EvalOptions(db=db, audio_dir=audio_dir, manifest=manifest, references=refs, baseline_run=baseline_run,
                           fail_on=fail_on, gate_scope=gate_scope, label=label, resume=resume, seed=seed, n_boot=n_boot,
                           asr=asr, speaker_encoder=speaker_encoder, utmos=utmos)
        doc = _run(evaluate_audio, opts)
    if not no_report:
        from reports.evaluation import eval_report

        doc["report"] = _report(eval_report, db, doc["run_id"])
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=1, default=str))
    else:
        from .summary import print_eval_summary

        print_eval_summary(doc)
        if doc.get("report"):
            typer.echo(f"report: {doc['report']}")
    if doc["gate"] and not doc["gate"]["passed"]:
        typer.echo("regression gate failed", err=True)
        raise typer.Exit(GATE_FAILED)


@app.command()
def runs(
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
    limit: int = typer.Option(50, "--limit", help="Newest runs to list."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List evaluation runs, newest first, with their overall figures."""
    from evaluate.run import list_runs

    rows = _run(list_runs, db, limit)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
    else:
        from .summary import print_runs

        print_runs(rows)


@app.command()
def synth(
    gpt: Path = typer.Option(..., "--gpt", help="GPT .ckpt (GPT-SoVITS v2 format)."),
    sovits: Path = typer.Option(..., "--sovits", help="SoVITS .pth (GPT-SoVITS v2 format)."),
    text: str = typer.Option(..., "--text", help="What to say (zh, en or mixed)."),
    lang: str = typer.Option("auto", "--lang", help="zh, en, or auto (mixed zh+en)."),
    speaker: Optional[str] = typer.Option(None, "--speaker", help="Take the reference clip and its text from this vetted speaker."),
    ref_audio: Optional[Path] = typer.Option(None, "--ref-audio", help="A 3-10 s reference clip instead of --speaker."),
    prompt_text: Optional[str] = typer.Option(None, "--prompt-text", help="Transcript of --ref-audio."),
    prompt_lang: str = typer.Option("auto", "--prompt-lang", help="Language of --prompt-text."),
    out: Path = typer.Option(Path("out.wav"), "--out", help="Output wav (32 kHz)."),
    seed: int = typer.Option(0, "--seed"),
    top_k: int = typer.Option(15, "--top-k"),
    top_p: float = typer.Option(1.0, "--top-p"),
    temperature: float = typer.Option(1.0, "--temperature"),
    repetition_penalty: float = typer.Option(1.35, "--repetition-penalty"),
    speed: float = typer.Option(1.0, "--speed", help="Speaking rate factor (0.25-4)."),
    content: Optional[str] = typer.Option(None, "--content", help="Content features: whisper-base or cnhubert:/folder (default: what the model was trained with)."),
    bert: Optional[Path] = typer.Option(None, "--bert", help="chinese-roberta-wwm-ext-large folder (Chinese text; zeros without it)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or fp16 (on a CPU: the GPT only)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store (for --speaker)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Synthesize speech in a reference voice with a GPT + SoVITS pair."""
    from model.gpt import SamplingParams
    from model.speak import prompt_from_file, prompt_from_store, synth as run_synth

    if (speaker is None) == (ref_audio is None):
        typer.echo("error: give exactly one of --speaker or --ref-audio", err=True)
        raise typer.Exit(2)
    prompt = _run(prompt_from_store, db, speaker) if speaker else _run(prompt_from_file, ref_audio, prompt_text, prompt_lang)
    params = SamplingParams(top_k, top_p, temperature, repetition_penalty)
    result = _run(run_synth, gpt, sovits, text, lang, out, prompt, params, seed, speed, content, bert, threads,
                  precision, device)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        typer.echo(f"{result['out']}: {result['duration_s']:.2f} s, {result['tokens']} tokens, RTF {result['rtf']:.3f}")


@app.command("init-model")
def init_model(
    preset: str = typer.Option("tiny", "--preset", help="tiny or v2."),
    out: Path = typer.Option(..., "--out", help="Folder for the two files."),
    seed: int = typer.Option(0, "--seed"),
    sv_dim: int = typer.Option(0, "--sv-dim", help="Add the speaker-embedding path (256 for Resemblyzer)."),
) -> None:
    """Write random-weight GPT + SoVITS files of a preset (for trying the pipeline and measuring speed)."""
    from model.speak import init_model as run_init

    typer.echo(json.dumps(_run(run_init, preset, out, seed, sv_dim), indent=1))


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="Run folder (its name is the run's name)."),
    speakers: Optional[str] = typer.Option(None, "--speakers", help="Comma-separated speakers to train on."),
    all_speakers: bool = typer.Option(False, "--all", help="Every speaker with enough accepted audio."),
    preset: str = typer.Option("tiny", "--preset", help="tiny or v2."),
    init_gpt: Optional[Path] = typer.Option(None, "--init-gpt", help="Fine-tune from this GPT .ckpt."),
    init_sovits: Optional[Path] = typer.Option(None, "--init-sovits", help="Fine-tune from this SoVITS .pth (quantizer frozen)."),
    s2_epochs: int = typer.Option(8, "--s2-epochs"),
    s1_epochs: int = typer.Option(8, "--s1-epochs"),
    batch_size: int = typer.Option(4, "--batch-size"),
    grad_accum: int = typer.Option(1, "--grad-accum", help="GPT: optimizer step every N batches."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --out."),
    seed: int = typer.Option(1234, "--seed"),
    save_every: int = typer.Option(50, "--save-every", help="Steps between checkpoints (and at each epoch's end)."),
    keep: int = typer.Option(3, "--keep", help="Checkpoints kept per stage."),
    content: Optional[str] = typer.Option(None, "--content", help="Content features: whisper-base or cnhubert:/folder."),
    no_speaker_embeddings: bool = typer.Option(False, "--no-speaker-embeddings", help="Train without the sv_emb path (files exactly v2's)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the training report."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train SoVITS (s2) then the GPT (s1) on the accepted clips; export GPT-SoVITS-format files."""
    from model.train import TrainOptions, train as run_train

    if (speakers is None) == (not all_speakers):
        typer.echo("error: give --speakers a,b or --all", err=True)
        raise typer.Exit(2)
    opts = TrainOptions(db=db, out=out, speakers=[s for s in (speakers or "").split(",") if s] or None, preset=preset,
                        init_gpt=init_gpt, init_sovits=init_sovits, s2_epochs=s2_epochs, s1_epochs=s1_epochs,
                        batch_size=batch_size, grad_accum=grad_accum, device=device, resume=resume, seed=seed,
                        save_every=save_every, keep=keep, content=content,
                        speaker_embeddings=not no_speaker_embeddings)
    result = _run(run_train, opts)
    if result.get("rank", 0) != 0:  # under torchrun, rank 0 reports for the run
        return
    from reports.training import training_report

    result["report"] = None if no_report else _report(training_report, db, result["run"])
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        typer.echo(f"trained {', '.join(result['speakers'])} on {result['train_clips']} clips "
                   f"({result['val_clips']} held out): {result['gpt']} {result['sovits']}")
        if result["report"]:
            typer.echo(f"report: {result['report']}")


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="Folder for the .list, the 32 kHz wavs and the timbre library."),
    fmt: str = typer.Option("gpt-sovits", "--format", help="gpt-sovits (the only format)."),
    speakers: Optional[str] = typer.Option(None, "--speakers", help="Comma-separated speakers (default: all)."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Export the accepted clips as a GPT-SoVITS training list with 32 kHz wavs, plus the timbre library."""
    from model.export import export_gpt_sovits

    if fmt != "gpt-sovits":
        typer.echo(f"error: unknown --format {fmt!r}: use gpt-sovits", err=True)
        raise typer.Exit(2)
    result = _run(export_gpt_sovits, db, out, [s for s in (speakers or "").split(",") if s] or None)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=1) if as_json else
               f"{result['list']}: {result['clips']} clips of {', '.join(result['speakers'])}")


report_app = typer.Typer(no_args_is_help=True, help="Render HTML reports from the store (read-only).")
app.add_typer(report_app, name="report")


@report_app.command("speaker")
def report_speaker(
    name: str = typer.Argument(..., help="Speaker name."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: <store folder>/reports/NAME.html)."),
    embed_audio: bool = typer.Option(False, "--embed-audio", help="Put the audio inside the HTML instead of linking it."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
) -> None:
    """Per-speaker quality report: verdict, advice, metric distributions, clip table, embedding map."""
    from reports.speaker import speaker_report

    typer.echo(str(_run(speaker_report, db, name, out, embed_audio)))


@report_app.command("dataset")
def report_dataset(
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: <store folder>/reports/dataset.html)."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
) -> None:
    """Dataset overview: speakers with status, totals and accept rates; the reasons histogram; links."""
    from reports.dataset import dataset_report

    typer.echo(str(_run(dataset_report, db, out)))


@report_app.command("training")
def report_training(
    run_name: str = typer.Argument(..., help="The training run (its --out folder name)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: <store folder>/reports/training-RUN.html)."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
) -> None:
    """Training report: loss curves, learning rate, throughput, validation, checkpoints and their evaluations."""
    from reports.training import training_report

    typer.echo(str(_run(training_report, db, run_name, out)))


@report_app.command("trend")
def report_trend(
    speaker: Optional[str] = typer.Option(None, "--speaker", help="One speaker's figures instead of the overall ones."),
    mode: str = typer.Option("all", "--mode", help="all, model (checkpoint runs) or audio."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: <store folder>/reports/trend[-SPEAKER].html)."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
) -> None:
    """Metrics across evaluation runs over time, with 95 % intervals."""
    from reports.trend import trend_report

    typer.echo(str(_run(trend_report, db, speaker, mode, out)))


@report_app.command("eval")
def report_eval(
    run_id: str = typer.Argument(..., help="The run (see `clonebench runs`)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Compare with this run (default: the run's own baseline)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: <store folder>/reports/eval-RUN.html)."),
    embed_audio: bool = typer.Option(False, "--embed-audio", help="Put the audio inside the HTML instead of linking it."),
    db: Path = typer.Option(default_db_path(), "--db", help="The DuckDB store."),
) -> None:
    """Evaluation report: figures with CIs, forest plot against a baseline, gate, worst items with players."""
    from reports.evaluation import eval_report

    typer.echo(str(_run(eval_report, db, run_id, baseline, out, embed_audio)))


@app.command()
def models(
    asr: Optional[str] = typer.Option(None, "--asr", envvar="CLONEBENCH_ASR", help=ASR_HELP),
    speaker_encoder: Optional[str] = typer.Option(None, "--speaker-encoder", envvar="CLONEBENCH_SPEAKER_ENCODER", help=ENCODER_HELP),
    overlap: Optional[str] = typer.Option(None, "--overlap", envvar="CLONEBENCH_OVERLAP", help="pyannote:PATH"),
    utmos: Optional[str] = typer.Option(None, "--utmos", envvar="CLONEBENCH_UTMOS", help="DIR: a local UTMOS folder."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List every model: the embedded ones (wheel, SHA-256 checked) and the local ones given
    (path, SHA-256, and whether they load). Exit 1 when any of them is not usable."""
    from backends import backend_report

    from .registry import model_report

    rows = model_report() + backend_report(
        {"--asr": asr, "--speaker-encoder": speaker_encoder, "--overlap": overlap, "--utmos": utmos})
    usable = all(r["status"] == "ok" for r in rows if "configured" not in r) and all(
        r["status"].startswith("ok") for r in rows if r.get("configured"))
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        for r in rows:
            sha = f" sha256 {r['sha256'][:12]}" if r.get("sha256") and len(r["sha256"]) == 64 else ""
            typer.echo(f"{r['name']:<20} {r['source']:<42} {r['status']}{sha}")
    if not usable:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
