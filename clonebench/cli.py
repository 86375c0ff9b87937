"""The `clonebench` command: a thin typer layer over the library functions."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from clonebench.core.config import default_db_path
from clonebench.core.errors import UserError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# webrtcvad (through Resemblyzer) and jieba import pkg_resources, which setuptools 80.9 and later
# mark deprecated with a UserWarning: two lines on stderr that a user can do nothing about
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

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


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# options that several commands share, declared once
Db = Annotated[Path, typer.Option("--db", help="The DuckDB store.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
NoReport = Annotated[bool, typer.Option("--no-report", help="Do not write the reports.")]
Asr = Annotated[Optional[str], typer.Option(
    "--asr", envvar="CLONEBENCH_ASR",
    help="faster-whisper (embedded, default) or openai-whisper:FILE.pt (a local openai-whisper checkpoint).")]
Encoder = Annotated[Optional[str], typer.Option(
    "--speaker-encoder", envvar="CLONEBENCH_SPEAKER_ENCODER",
    help="resemblyzer (embedded, default), ecapa:DIR (a local speechbrain spkrec-ecapa-voxceleb folder), "
         "wavlm:DIR (a transformers WavLMForXVector folder) or eres2netv2:FILE (upstream GPT-SoVITS's "
         "ERes2NetV2 state dict, pretrained_eres2netv2w24s4ep4.ckpt).")]
Utmos = Annotated[Optional[str], typer.Option("--utmos", envvar="CLONEBENCH_UTMOS",
                                              help="DIR: a local UTMOS folder; adds the utmos metric.")]
Speakers = Annotated[Optional[str], typer.Option("--speakers", help="Comma-separated speakers.")]
Content = Annotated[Optional[str], typer.Option(
    "--content", help="Content features: whisper-base or cnhubert:/folder (default: what the model was trained with).")]
Bert = Annotated[Optional[Path], typer.Option(
    "--bert", help="chinese-roberta-wwm-ext-large folder (Chinese text; zeros without it).")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch.")]
SvModel = Annotated[Optional[Path], typer.Option(
    "--sv-model", envvar="CLONEBENCH_SV_MODEL",
    help="v2Pro/v2ProPlus: upstream's ERes2NetV2 file (pretrained_eres2netv2w24s4ep4.ckpt).")]
Timbre = Annotated[str, typer.Option(
    "--timbre", help="v2Pro/v2ProPlus: a voice's timbre vector from its reference clip (reference, upstream's way) "
                     "or the speaker's timbre library (speaker; written by vet --sv-model).")]
Device = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
Precision = Annotated[str, typer.Option("--precision", help="fp32, fp16 (on a CPU: the GPT's matrices only) or bf16 (for GPUs).")]
ReportOut = Annotated[Optional[Path], typer.Option("--out", help="Output file (default: under <store folder>/reports/).")]
DEFAULT_CHOOSE = "sim,wer<0.1"
Choose = Annotated[str, typer.Option(
    "--choose", help="How a run's checkpoint is chosen: the metric first, then ceilings (e.g. \"sim,wer<0.1\"): the "
                     "earliest passing checkpoint no later one beats significantly on the metric.")]
EvalItems = Annotated[int, typer.Option("--eval-items", help="Sentences per speaker when scoring a run's checkpoints.")]
RunName = Annotated[Optional[str], typer.Option("--run", help="A training run (its name or --out folder): its chosen checkpoint.")]
EmbedAudio = Annotated[bool, typer.Option("--embed-audio", help="Put the audio inside the HTML instead of linking it.")]


def _choosing(run: str, model, scoring, choose: str, eval_items: int):
    """The options that score a run's checkpoints and choose one (`evaluate --run`, `train --eval-every`)."""
    from clonebench.evaluate.checkpoints import RunEvalOptions
    from clonebench.evaluate.choose import ChoiceRule

    if eval_items < 1:
        _fail("--eval-items must be at least 1")
    return RunEvalOptions(run, model, scoring, _run(ChoiceRule.parse, choose), eval_items)


def _chosen_files(db: Path, run: str) -> tuple[Path, Path]:
    from clonebench.evaluate.checkpoints import chosen_pair

    choice = _run(chosen_pair, db, run)
    return Path(choice.gpt_path), Path(choice.sovits_path)


def _model(gpt: Path, sovits: Path, content: str | None, bert: Path | None, device: str, precision: str,
           threads: int | None, sv_model: Path | None, timbre: str):
    """The model-loading options `evaluate`, `synth` and `serve` share, checked before anything loads."""
    from clonebench.model.spec import ModelSpec

    return _run(ModelSpec, gpt=gpt, sovits=sovits, content=content, bert=bert, device=device, precision=precision,
                threads=threads, sv_model=sv_model, timbre=timbre)


def _names(csv: str | None) -> list[str] | None:
    return [s for s in (csv or "").split(",") if s] or None


def _jsonable(value):
    """Records print as their `to_json()` documents; anything else (paths, timestamps) as text."""
    return value.to_json() if hasattr(value, "to_json") else str(value)


def _print(doc, as_json: bool, text) -> None:
    """The command's result: the JSON document, or `text(doc)` for people."""
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=1, default=_jsonable))
    else:
        text(doc)


def _reports(paths) -> None:
    """The reports a command wrote, one line each (None: a report that was not written)."""
    for path in filter(None, paths or ()):
        typer.echo(f"report: {path}")


@app.command()
def vet(
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Audio files or folders (searched recursively).")] = None,
    speaker: Annotated[Optional[str], typer.Option("--speaker", "-s", help="Speaker name (letters, digits, _ - .).")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Expected language: en, zh, fr, ... or auto.")] = "en",
    transcripts: Annotated[Optional[Path], typer.Option(
        "--transcripts", help="TSV of name<TAB>text for the files (a .lab or .txt file beside an audio file is read too).")] = None,
    list_file: Annotated[Optional[Path], typer.Option(
        "--list", help="A GPT-SoVITS list (path|speaker|lang|text), or a corpus manifest (.csv or .parquet with columns "
        "path, speaker, lang and optionally text): vet every speaker in it, instead of INPUTS and --speaker.")] = None,
    rules: Annotated[Optional[Path], typer.Option("--rules", help="A rule-set TOML to use instead of the built-in one.")] = None,
    min_clip: Annotated[float, typer.Option("--min-clip", help="Slicer: shortest clip, seconds.")] = 3.0,
    max_clip: Annotated[float, typer.Option("--max-clip", help="Slicer: longest clip, seconds.")] = 15.0,
    silence_db: Annotated[float, typer.Option("--silence-db", help="Slicer: RMS threshold for silence, dBFS.")] = -40.0,
    max_recording_min: Annotated[float, typer.Option("--max-recording-min", help="Refuse recordings longer than this.")] = 20.0,
    asr: Asr = None,
    speaker_encoder: Encoder = None,
    overlap: Annotated[Optional[str], typer.Option(
        "--overlap", envvar="CLONEBENCH_OVERLAP",
        help="pyannote:PATH: overlapped-speech evidence for the multiple_speakers screen.")] = None,
    sv_model: Annotated[Optional[Path], typer.Option(
        "--sv-model", envvar="CLONEBENCH_SV_MODEL",
        help="ERes2NetV2 file: also store each speaker's v2Pro timbre vector (the mean over accepted clips).")] = None,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", help="Vet on a Ray cluster: local (start one here), auto (the cluster this machine is in), "
        "HOST:PORT of a head node, or ray://HOST:10001. The store's folder must be on a filesystem every node sees at the same path.")] = None,
    ray_workers: Annotated[Optional[int], typer.Option(
        "--ray-workers", help="With --ray: model workers (each holds every model once and takes CLONEBENCH_THREADS CPUs, "
        "4 at most by default); default: as many as the cluster's CPUs hold.")] = None,
    db: Db = default_db_path(),
    no_report: NoReport = False,
    as_json: Json = False,
) -> None:
    """Screen recordings of one speaker (or every speaker of a --list) and decide which clips are fit for cloning."""
    from clonebench.curate.cluster import RayOptions
    from clonebench.curate.slicer import SliceConfig
    from clonebench.curate.vet import VetOptions

    from . import workflows

    if ray is None and ray_workers is not None:
        _fail("--ray-workers goes with --ray")
    opts = _run(VetOptions, speaker=speaker, db=db, lang=lang, transcripts=transcripts, list_file=list_file,
                inputs=list(inputs or []), rules=rules,
                slicing=SliceConfig(threshold_db=silence_db, min_clip_s=min_clip, max_clip_s=max_clip),
                max_recording_min=max_recording_min, asr=asr, speaker_encoder=speaker_encoder, overlap=overlap,
                sv_model=sv_model, ray=None if ray is None else _run(
                    RayOptions, address=None if ray == "local" else ray, workers=ray_workers))
    result = _run(workflows.vet, opts, not no_report)

    def text(result) -> None:
        from .summary import print_vet_summary

        docs = result.speakers if list_file else [result]
        for d in docs:
            print_vet_summary(d, result.errors if d is docs[-1] else ())
        _reports(result.reports)

    _print(result, as_json, text)
    if result.errors:     # the run finished, but some inputs were refused: a script must notice
        raise typer.Exit(INPUTS_REFUSED)


@app.command()
def demo(
    data: Annotated[Path, typer.Option("--data", help="Data root: the demo corpus and store go here.")] = Path("datasets"),
    as_json: Annotated[bool, typer.Option("--json", help='Print {"vet": [...], "evaluate": [...]} as JSON.')] = False,
) -> None:
    """Build the demo corpus from Debian's speech packages, vet it, and evaluate two demo systems."""
    from . import workflows

    def text(result: dict) -> None:
        from .summary import print_eval_summary, print_vet_summary

        for r in result["vet"]:
            print_vet_summary(r)
        for doc in result["evaluate"]:
            print_eval_summary(doc)
        _reports(result["reports"])
        typer.echo(f"review the speakers' clips in a browser: clonebench review --db {data / 'clonebench.duckdb'}")

    _print(_run(workflows.demo, data), as_json, text)


GATE_FAILED = 3  # exit status when the regression gate fails (0 ok, 1 crash, 2 usage error)
INPUTS_REFUSED = 4  # exit status of a vet run that finished with inputs it refused (listed under `errors`)


@app.command()
def evaluate(
    audio_dir: Annotated[Optional[Path], typer.Option("--audio-dir", help="Audio mode: a folder of audio made by any system.")] = None,
    gpt: Annotated[Optional[Path], typer.Option("--gpt", help="Model mode: GPT .ckpt to synthesize the eval set with.")] = None,
    sovits: Annotated[Optional[Path], typer.Option("--sovits", help="Model mode: SoVITS .pth.")] = None,
    baseline_gpt: Annotated[Optional[Path], typer.Option("--baseline-gpt", help="Model mode: baseline GPT .ckpt to compare with.")] = None,
    baseline_sovits: Annotated[Optional[Path], typer.Option("--baseline-sovits", help="Model mode: baseline SoVITS .pth.")] = None,
    baseline_timbre: Annotated[Optional[str], typer.Option(
        "--baseline-timbre", help="Model mode, v2Pro: the baseline's timbre source (default: --timbre); with the same "
                                  "files as --gpt/--sovits it compares reference and speaker timbre on the same items.")] = None,
    eval_set: Annotated[str, typer.Option(
        "--eval-set", help="Model mode: default, en, zh, zh-en, or a TSV id<TAB>lang<TAB>text.")] = "default",
    run: Annotated[Optional[str], typer.Option(
        "--run", help="Score every checkpoint a training run exported (its name or --out folder) and choose one by --choose.")] = None,
    choose: Choose = DEFAULT_CHOOSE,
    eval_items: EvalItems = 8,
    speakers: Speakers = None,
    content: Content = None,
    bert: Bert = None,
    threads: Threads = None,
    device: Device = "cpu",
    precision: Precision = "fp32",
    sv_model: SvModel = None,
    timbre: Timbre = "reference",
    manifest: Annotated[Optional[Path], typer.Option(
        "--manifest", help="TSV file<TAB>speaker<TAB>lang<TAB>text[<TAB>prompt[<TAB>synth_s[<TAB>ttfa_s]]] "
                           "(default: AUDIO_DIR/manifest.tsv).")] = None,
    reference: Annotated[list[str], typer.Option(
        "--reference", help="speaker=path (file or folder) for similarity; default: the speaker's accepted clips in "
                            "the store. Repeatable.")] = [],  # noqa: B006 (typer reads the default, never mutates it)
    baseline_run: Annotated[Optional[str], typer.Option("--baseline-run", help="Compare paired with this earlier run.")] = None,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help='Regression gate, e.g. "sim<-0.02,wer>+0.01": exit 3 when a difference is significantly '
                          "worse and beyond its threshold.")] = None,
    gate_scope: Annotated[str, typer.Option(
        "--gate-scope", help="overall, or speaker: every speaker's difference is gated too.")] = "overall",
    label: Annotated[Optional[str], typer.Option("--label", help="A name for this run in `clonebench runs`.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Finish a run that was interrupted.")] = None,
    asr: Asr = None,
    speaker_encoder: Encoder = None,
    utmos: Utmos = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap (and of synthesis in model mode).")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 2000,
    db: Db = default_db_path(),
    no_report: NoReport = False,
    as_json: Json = False,
) -> None:
    """Score synthesized speech: speaker similarity, Whisper WER/CER, DNSMOS, RTF; CIs, baseline, gate."""
    from clonebench.evaluate.model_mode import ModelEvalOptions
    from clonebench.evaluate.run import EvalOptions, parse_references

    from . import workflows

    if run is not None:
        if audio_dir is not None or gpt is not None or sovits is not None:
            _fail("--run scores the run's own checkpoints: leave out --audio-dir, --gpt and --sovits")
        _evaluate_run(run, db, choose, eval_items, eval_set, content, bert, device, precision, threads, sv_model, timbre,
                      seed, n_boot, asr, speaker_encoder, utmos, no_report, as_json)
        return
    if (audio_dir is None) == (gpt is None and sovits is None):
        _fail("give --audio-dir (audio mode), --gpt and --sovits (model mode) or --run (a training run)")
    if audio_dir is None:
        if gpt is None or sovits is None:
            _fail("model mode needs both --gpt and --sovits")
        if (baseline_gpt is None) != (baseline_sovits is None):
            _fail("give both --baseline-gpt and --baseline-sovits, or neither")
        model = _model(gpt, sovits, content, bert, device, precision, threads, sv_model, timbre)
        baseline = None
        if baseline_gpt is not None:
            baseline = _run(model.with_files, baseline_gpt, baseline_sovits, baseline_timbre or timbre)
        references = {}
    else:
        references = _run(parse_references, reference)
    scoring = _run(EvalOptions, db=db, audio_dir=audio_dir, manifest=manifest, references=references,
                   baseline_run=baseline_run, resume=resume, label=label, fail_on=fail_on, gate_scope=gate_scope,
                   seed=seed, n_boot=n_boot, asr=asr, speaker_encoder=speaker_encoder, utmos=utmos)
    if audio_dir is None:
        opts = _run(ModelEvalOptions, model=model, scoring=scoring, baseline=baseline, eval_set=eval_set,
                    speakers=_names(speakers) or [])
    else:
        opts = scoring
    result = _run(workflows.evaluate, opts, not no_report)

    def text(result) -> None:
        from .summary import print_eval_summary

        print_eval_summary(result)
        _reports([result.report])

    _print(result, as_json, text)
    if result.gate and not result.gate.passed:
        typer.echo("regression gate failed", err=True)
        raise typer.Exit(GATE_FAILED)


def _evaluate_run(run, db, choose, eval_items, eval_set, content, bert, device, precision, threads, sv_model, timbre,
                  seed, n_boot, asr, speaker_encoder, utmos, no_report, as_json) -> None:
    from clonebench.evaluate.run import EvalOptions
    from clonebench.model.spec import ModelSpec

    from . import workflows

    scoring = _run(EvalOptions, db=db, seed=seed, n_boot=n_boot, asr=asr, speaker_encoder=speaker_encoder, utmos=utmos)
    opts = _choosing(run, None, scoring, choose, eval_items)
    if (content, bert, device, precision, threads, sv_model, timbre) != (None, None, "cpu", "fp32", None, None, "reference"):
        pairs = _run(_first_pair, db, run)   # how every pair loads, checked on the first before any work
        opts = replace(opts, model=_run(ModelSpec, pairs[0], pairs[1], content, bert, device, precision, threads, sv_model, timbre))
    opts = replace(opts, eval_set=eval_set)
    result, report = _run(workflows.evaluate_run, opts, not no_report)

    def text(r) -> None:
        for c in r.checkpoints:
            o = c.figures.overall
            figs = "  ".join(f"{m} {o[m].value:.3g} [{o[m].lo:.3g}, {o[m].hi:.3g}]" for m in ("sim", "wer", "cer") if m in o)
            typer.echo(f"epoch {c.epoch:>3}  {figs}")
        typer.echo(("chosen: " if r.choice.chosen else "not chosen: ") + r.choice.why)
        for speaker, why in r.choice.unsettled.items():
            typer.echo(f"not settled: {speaker}: {why}")
        _reports([report])

    _print(result, as_json, text)


def _first_pair(db: Path, run: str) -> tuple[Path, Path]:
    from clonebench.evaluate.checkpoints import run_pairs

    pair = run_pairs(db, Path(run).name)[0]
    return pair.gpt, pair.sovits


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", help="Newest runs to list.")] = 50,
    db: Db = default_db_path(),
    as_json: Json = False,
) -> None:
    """List evaluation runs, newest first, with their overall figures."""
    from clonebench.evaluate.run import list_runs

    from .summary import print_runs

    _print(_run(list_runs, db, limit), as_json, print_runs)


@app.command()
def synth(
    gpt: Annotated[Path, typer.Option("--gpt", help="GPT .ckpt (GPT-SoVITS v2 format; s1v3 for v2Pro).")],
    sovits: Annotated[Path, typer.Option("--sovits", help="SoVITS .pth (GPT-SoVITS v2, v2Pro or v2ProPlus).")],
    text: Annotated[str, typer.Option("--text", help="What to say (zh, en, ja, ko, yue or mixed).")],
    lang: Annotated[str, typer.Option("--lang", help="zh, en, ja, ko, yue, or auto (mixed: by script).")] = "auto",
    speaker: Annotated[Optional[str], typer.Option(
        "--speaker", help="Take the reference clip and its text from this vetted speaker.")] = None,
    ref_audio: Annotated[Optional[Path], typer.Option("--ref-audio", help="A 3-10 s reference clip instead of --speaker.")] = None,
    prompt_text: Annotated[Optional[str], typer.Option("--prompt-text", help="Transcript of --ref-audio.")] = None,
    prompt_lang: Annotated[str, typer.Option("--prompt-lang", help="Language of --prompt-text.")] = "auto",
    out: Annotated[Path, typer.Option("--out", help="Output wav (32 kHz).")] = Path("out.wav"),
    seed: Annotated[int, typer.Option("--seed")] = 0,
    top_k: Annotated[int, typer.Option("--top-k")] = 15,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    temperature: Annotated[float, typer.Option("--temperature")] = 1.0,
    repetition_penalty: Annotated[float, typer.Option("--repetition-penalty")] = 1.35,
    speed: Annotated[float, typer.Option("--speed", help="Speaking rate factor (0.25-4).")] = 1.0,
    content: Content = None,
    bert: Bert = None,
    threads: Threads = None,
    precision: Precision = "fp32",
    device: Device = "cpu",
    sv_model: SvModel = None,
    timbre: Timbre = "reference",
    db: Annotated[Path, typer.Option("--db", help="The DuckDB store (for --speaker).")] = default_db_path(),
    as_json: Json = False,
) -> None:
    """Synthesize speech in a reference voice with a GPT + SoVITS pair."""
    from clonebench.model.decode import SamplingParams
    from clonebench.model.speak import SynthOptions
    from clonebench.model.speak import synth as run_synth

    opts = _run(SynthOptions, model=_model(gpt, sovits, content, bert, device, precision, threads, sv_model, timbre), text=text,
                out=out, lang=lang, speaker=speaker, db=db, ref_audio=ref_audio, prompt_text=prompt_text,
                prompt_lang=prompt_lang, params=SamplingParams(top_k, top_p, temperature, repetition_penalty),
                seed=seed, speed=speed)
    _print(_run(run_synth, opts), as_json, lambda r: typer.echo(
        f"{r['out']}: {r['duration_s']:.2f} s, {r['tokens']} tokens, RTF {r['rtf']:.3f}"))


@app.command("init-model")
def init_model(
    out: Annotated[Path, typer.Option("--out", help="Folder for the two files.")],
    preset: Annotated[str, typer.Option("--preset", help="tiny, v2, v2pro or v2proplus.")] = "tiny",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    sv_dim: Annotated[int, typer.Option("--sv-dim", help="Add the speaker-embedding path (256 for Resemblyzer).")] = 0,
) -> None:
    """Write random-weight GPT + SoVITS files of a preset (for trying the pipeline and measuring speed)."""
    from clonebench.model.speak import init_model as run_init

    _print(_run(run_init, preset, out, seed, sv_dim), True, None)


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="Run folder (its name is the run's name).")],
    speakers: Speakers = None,
    all_speakers: Annotated[bool, typer.Option("--all", help="Every speaker with enough accepted audio.")] = False,
    preset: Annotated[str, typer.Option("--preset", help="tiny, v2, v2pro or v2proplus.")] = "tiny",
    init_gpt: Annotated[Optional[Path], typer.Option("--init-gpt", help="Fine-tune from this GPT .ckpt.")] = None,
    init_sovits: Annotated[Optional[Path], typer.Option(
        "--init-sovits", help="Fine-tune from this SoVITS .pth (quantizer frozen).")] = None,
    s2_epochs: Annotated[int, typer.Option("--s2-epochs")] = 8,
    s1_epochs: Annotated[int, typer.Option("--s1-epochs")] = 8,
    batch_size: Annotated[str, typer.Option(
        "--batch-size", help="Clips per batch, or auto: the largest the pre-flight measures to fit.")] = "4",
    memory_limit: Annotated[Optional[float], typer.Option(
        "--memory-limit", help="GiB the run may use at most (a shared machine); the pre-flight fits the batch to it.")] = None,
    grad_accum: Annotated[int, typer.Option("--grad-accum", help="GPT: optimizer step every N batches.")] = 1,
    device: Device = "cpu",
    amp: Annotated[str, typer.Option("--amp", help="bf16 autocast: auto (on CUDA), bf16 (on a CPU too), none.")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint in --out.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 1234,
    save_every: Annotated[int, typer.Option("--save-every", help="Steps between checkpoints (and at each epoch's end).")] = 50,
    keep: Annotated[int, typer.Option("--keep", help="Checkpoints kept per stage.")] = 3,
    content: Content = None,
    sv_model: SvModel = None,
    no_speaker_embeddings: Annotated[bool, typer.Option(
        "--no-speaker-embeddings", help="Train without the sv_emb path (files exactly v2's).")] = False,
    eval_every: Annotated[int, typer.Option(
        "--eval-every", help="Every N GPT epochs: export the pair, score it on the trained voices, and at the end "
                             "choose the checkpoint by --choose (0: off).")] = 0,
    eval_items: EvalItems = 8,
    choose: Choose = DEFAULT_CHOOSE,
    db: Db = default_db_path(),
    no_report: NoReport = False,
    as_json: Json = False,
) -> None:
    """Train SoVITS (s2) then the GPT (s1) on the accepted clips; export GPT-SoVITS-format files."""
    from clonebench.evaluate.run import EvalOptions
    from clonebench.model.train import TrainOptions

    from . import workflows

    if (speakers is None) == (not all_speakers):
        _fail("give --speakers a,b or --all")
    if batch_size != "auto" and not (batch_size.isascii() and batch_size.isdigit()):
        _fail(f"--batch-size must be a whole number or auto, not {batch_size!r}")
    opts = _run(TrainOptions, db=db, out=out, speakers=_names(speakers), preset=preset, init_gpt=init_gpt,
                init_sovits=init_sovits, s2_epochs=s2_epochs, s1_epochs=s1_epochs,
                batch_size=batch_size if batch_size == "auto" else int(batch_size), memory_limit_gib=memory_limit,
                grad_accum=grad_accum, device=device, amp=amp, resume=resume, seed=seed, save_every=save_every, keep=keep,
                content=content, speaker_embeddings=not no_speaker_embeddings, sv_model=sv_model, eval_every=eval_every)
    choosing = None
    if eval_every:   # each pair is synthesized where training runs
        choosing = replace(_choosing(str(out), None, _run(EvalOptions, db=db), choose, eval_items), device=device,
                           sv_model=sv_model)
    result = _run(workflows.train, opts, not no_report, choosing)
    if result.get("rank", 0) != 0:  # under torchrun, rank 0 reports for the run
        return

    def text(r: dict) -> None:
        typer.echo(f"trained {', '.join(r['speakers'])} on {r['train_clips']} clips ({r['val_clips']} held out): "
                   f"{r['gpt']} {r['sovits']}")
        if "choice" in r:
            typer.echo(f"chosen: {r['choice']['why']}")
        _reports([r.get("report")])

    _print(result, as_json, text)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the .list, the 32 kHz wavs and the timbre library.")],
    fmt: Annotated[str, typer.Option("--format", help="gpt-sovits (the only format).")] = "gpt-sovits",
    speakers: Speakers = None,
    run: RunName = None,
    db: Db = default_db_path(),
    as_json: Json = False,
) -> None:
    """Export the accepted clips as a GPT-SoVITS training list with 32 kHz wavs, plus the timbre library;
    with --run, also the run's chosen GPT-SoVITS pair."""
    from clonebench.curate.export import export as run_export

    from . import workflows

    doc = _run(run_export, db, out, fmt, _names(speakers))
    if run is not None:
        doc["chosen"] = _run(workflows.export_chosen, db, run, out)

    def text(r: dict) -> None:
        typer.echo(f"{r['list']}: {r['clips']} clips of {', '.join(r['speakers'])}")
        if "chosen" in r:
            typer.echo(f"chosen checkpoint (epoch {r['chosen']['epoch']}): {r['chosen']['gpt']} {r['chosen']['sovits']}")

    _print(doc, as_json, text)


@app.command()
def serve(
    gpt: Annotated[Optional[Path], typer.Option("--gpt", help="GPT .ckpt (GPT-SoVITS v2 format; s1v3 for v2Pro).")] = None,
    sovits: Annotated[Optional[Path], typer.Option("--sovits", help="SoVITS .pth (GPT-SoVITS v2, v2Pro or v2ProPlus).")] = None,
    run: RunName = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 9880,
    device: Device = "cpu",
    precision: Precision = "fp32",
    content: Content = None,
    bert: Bert = None,
    threads: Threads = None,
    sv_model: SvModel = None,
    timbre: Timbre = "reference",
    max_chars: Annotated[int, typer.Option(
        "--max-chars", help="Longest sentence; a longer one is cut between words.")] = 150,
    max_input_chars: Annotated[int, typer.Option("--max-input-chars", help="Longest text one request may carry.")] = 4096,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Sentences decoded together.")] = 8,
    batch_memory_mb: Annotated[Optional[int], typer.Option(
        "--batch-memory-mb", help="Most memory a batch's KV cache may take, at its token caps (default 512 on a CPU, "
                                  "8192 on CUDA); a batch stops growing there.")] = None,
    batch_window_ms: Annotated[float, typer.Option("--batch-window-ms", help="How long the worker waits to fill a batch.")] = 10.0,
    continuous: Annotated[bool, typer.Option(
        "--continuous", help="Continuous batching: sentences join the running decode as rows free up.")] = False,
    queue: Annotated[int, typer.Option("--queue", help="Sentences that may wait; beyond that: 503.")] = 64,
    voices_cache: Annotated[int, typer.Option("--voices-cache", help="Prepared voices kept in memory.")] = 32,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a request may take (504 after).")] = 120.0,
    api_keys: Annotated[Optional[Path], typer.Option(
        "--api-keys", help="A file of API keys, one a line (also CLONEBENCH_API_KEYS=k1,k2); stored hashed.")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow a non-loopback --host without API keys.")] = False,
    ref_dir: Annotated[Optional[Path], typer.Option(
        "--ref-dir", help="api_v2's ref_audio_path may name reference files under this folder (and nothing else).")] = None,
    weights_dir: Annotated[Optional[Path], typer.Option(
        "--weights-dir", help="api_v2's /set_gpt_weights and /set_sovits_weights may load files under this folder.")] = None,
    db: Db = default_db_path(),
) -> None:
    """Serve the enrolled voices over HTTP: /v1/tts, OpenAI's /v1/audio/speech, GPT-SoVITS api_v2's /tts, /metrics."""
    from clonebench.serve.app import run as serve_app
    from clonebench.serve.options import ServeOptions

    if run is not None:
        if gpt is not None or sovits is not None:
            _fail("--run serves the run's chosen pair: leave out --gpt and --sovits")
        gpt, sovits = _chosen_files(db, run)
    elif gpt is None or sovits is None:
        _fail("give --gpt and --sovits, or --run NAME (a training run's chosen checkpoint)")
    opts = _run(ServeOptions, model=_model(gpt, sovits, content, bert, device, precision, threads, sv_model, timbre), db=db, host=host,
                port=port, max_chars=max_chars, max_input_chars=max_input_chars, max_batch=max_batch,
                batch_memory_mb=batch_memory_mb, continuous=continuous, batch_window_ms=batch_window_ms, queue=queue,
                voices_cache=voices_cache, request_timeout_s=timeout, api_keys=api_keys, insecure=insecure,
                ref_dir=ref_dir, weights_dir=weights_dir)
    _run(serve_app, opts)


prompt_app = typer.Typer(no_args_is_help=True, help="A speaker's synthesis prompt, when the store's choice will not do.")
app.add_typer(prompt_app, name="prompt")


@prompt_app.command("set")
def prompt_set(
    speaker: Annotated[str, typer.Argument(help="The speaker.")],
    audio: Annotated[Path, typer.Option("--audio", help="A 3-10 s clip of the speaker (any format ffmpeg reads).")],
    text: Annotated[str, typer.Option("--text", help="The words spoken in it.")],
    lang: Annotated[str, typer.Option("--lang", help="Their language: one the model's front end reads (en, zh).")] = "en",
    by: Annotated[Optional[str], typer.Option("--by", help="Who chose it (kept with the prompt).")] = None,
    db: Db = default_db_path(),
    as_json: Json = False,
) -> None:
    """Give a speaker the prompt synthesis and `serve` use (e.g. a voice whose clips are in a language
    the model does not read); the store keeps a 32 kHz copy."""
    from . import workflows

    _print(_run(workflows.give_prompt, db, speaker, audio, text, lang, by), as_json,
           lambda p: typer.echo(f"{p.speaker}: prompt {p.path} ({p.lang}) \"{p.text}\""))


@prompt_app.command("clear")
def prompt_clear(speaker: Annotated[str, typer.Argument(help="The speaker.")], db: Db = default_db_path()) -> None:
    """Forget the prompts given for a speaker (files and reviewers' picks): the store chooses one from the accepted clips again."""
    from clonebench.curate.reviews import take_back_reference
    from clonebench.store import Store

    def clear() -> int:
        with Store(db) as store, store.transaction():
            return store.clear_speaker_prompt(speaker) + take_back_reference(store, speaker, "clonebench prompt clear")
    typer.echo(f"{speaker}: {_run(clear)} given prompt(s) forgotten")


review_app = typer.Typer(help="Review the vetted clips in a browser: a person's verdicts, texts and reference "
                                "stand over the machine's. With no command: serve the review pages.")
app.add_typer(review_app, name="review")


@review_app.callback(invoke_without_command=True)
def review(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 9890,
    reviewer: Annotated[Optional[str], typer.Option(
        "--reviewer", help="Who the reviews are recorded as (default: your login name; with --api-keys, the key's name).")] = None,
    api_keys: Annotated[Optional[Path], typer.Option(
        "--api-keys", help="A file of keys, one a line as KEY or NAME KEY (also CLONEBENCH_API_KEYS=k1,k2); "
                           "the name is recorded as the reviewer.")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow a non-loopback --host without API keys.")] = False,
    db: Db = default_db_path(),
) -> None:
    """Serve the review pages: listen, accept or reject with a reason, correct texts, pick each voice's reference, undo."""
    if ctx.invoked_subcommand is not None:
        return
    from clonebench.review.app import run
    from clonebench.review.options import ReviewOptions

    opts = _run(ReviewOptions, db=db, host=host, port=port, reviewer=reviewer, api_keys=api_keys, insecure=insecure)
    typer.echo(f"reviewing {db} at http://{host}:{port}/ as {opts.reviewer if not opts.keys else 'the key holders'}", err=True)
    _run(run, opts)


@review_app.command("import")
def review_import(
    list_file: Annotated[Path, typer.Argument(help="A GPT-SoVITS .list a person proofread (upstream's subfix tool).")],
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", help="Who the reviews are recorded as.")] = None,
    db: Db = default_db_path(),
    as_json: Json = False,
) -> None:
    """Changed texts become text reviews; lines deleted from a list `export` wrote become rejections."""
    from clonebench.curate.reviews import import_list
    from clonebench.review.options import ReviewOptions

    name = _run(ReviewOptions, db=db, reviewer=reviewer).reviewer
    _print(_run(import_list, db, list_file, name), as_json, lambda r: typer.echo(
        f"{list_file}: {r.texts} text(s) changed, {r.rejected} clip(s) rejected, {r.unchanged} unchanged"
        + ("" if r.deletions_checked else " (no export manifest beside it: deleted lines were not looked for)")
        + "".join(f"\n  not applied: {c}" for c in r.conflicts) + "".join(f"\n  not matched: {u}" for u in r.unmatched)))


@review_app.command("export")
def review_export(out: Annotated[Path, typer.Argument(help="The CSV file to write.")], db: Db = default_db_path()) -> None:
    """Every review (who, when, what, before and after, what the rules said) as CSV."""
    from clonebench.curate.reviews import export_reviews

    typer.echo(f"{out}: {_run(export_reviews, db, out)} review(s)")


report_app = typer.Typer(no_args_is_help=True, help="Render HTML reports from the store (read-only).")
app.add_typer(report_app, name="report")


@report_app.command("speaker")
def report_speaker(name: Annotated[str, typer.Argument(help="Speaker name.")], out: ReportOut = None,
                   embed_audio: EmbedAudio = False, db: Db = default_db_path()) -> None:
    """Per-speaker quality report: verdict, advice, metric distributions, clip table, embedding map."""
    from clonebench.reports.speaker import speaker_report

    typer.echo(str(_run(speaker_report, db, name, out, embed_audio)))


@report_app.command("dataset")
def report_dataset(out: ReportOut = None, db: Db = default_db_path()) -> None:
    """Dataset overview: speakers with status, totals and accept rates; the reasons histogram; links."""
    from clonebench.reports.dataset import dataset_report

    typer.echo(str(_run(dataset_report, db, out)))


@report_app.command("training")
def report_training(run_name: Annotated[str, typer.Argument(help="The training run (its --out folder name).")],
                    out: ReportOut = None, db: Db = default_db_path()) -> None:
    """Training report: loss curves, learning rate, throughput, validation, checkpoints and their evaluations."""
    from clonebench.reports.training import training_report

    typer.echo(str(_run(training_report, db, run_name, out)))


@report_app.command("trend")
def report_trend(
    speaker: Annotated[Optional[str], typer.Option("--speaker", help="One speaker's figures instead of the overall ones.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="all, model (checkpoint runs) or audio.")] = "all",
    out: ReportOut = None,
    db: Db = default_db_path(),
) -> None:
    """Metrics across evaluation runs over time, with 95 % intervals."""
    from clonebench.reports.trend import trend_report

    typer.echo(str(_run(trend_report, db, speaker, mode, out)))


@report_app.command("serve")
def report_serve(out: ReportOut = None, db: Db = default_db_path()) -> None:
    """Voice-service report: latency, time to first audio and RTF over time, requests per speaker, refusals."""
    from clonebench.reports.serving import serve_report

    typer.echo(str(_run(serve_report, db, out)))


@report_app.command("eval")
def report_eval(
    run_id: Annotated[str, typer.Argument(help="The run (see `clonebench runs`).")],
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="Compare with this run (default: the run's own baseline).")] = None,
    out: ReportOut = None,
    embed_audio: EmbedAudio = False,
    db: Db = default_db_path(),
) -> None:
    """Evaluation report: figures with CIs, forest plot against a baseline, gate, worst items with players."""
    from clonebench.reports.evaluation import eval_report

    typer.echo(str(_run(eval_report, db, run_id, baseline, out, embed_audio)))


@app.command()
def models(
    asr: Asr = None,
    speaker_encoder: Encoder = None,
    overlap: Annotated[Optional[str], typer.Option("--overlap", envvar="CLONEBENCH_OVERLAP", help="pyannote:PATH")] = None,
    utmos: Utmos = None,
    as_json: Json = False,
) -> None:
    """List every model: the embedded ones (wheel, SHA-256 checked) and the local ones given
    (path, SHA-256, and whether they load). Exit 1 when any of them is not usable."""
    from clonebench.instruments import model_report

    rows = model_report({"--asr": asr, "--speaker-encoder": speaker_encoder, "--overlap": overlap, "--utmos": utmos})

    def text(rows: list[dict]) -> None:
        for r in rows:
            sha = f" sha256 {r['sha256'][:12]}" if r.get("sha256") and len(r["sha256"]) == 64 else ""
            typer.echo(f"{r['name']:<20} {r['source']:<42} {r['status']}{sha}")

    _print(rows, as_json, text)
    if not all(r["usable"] for r in rows):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
