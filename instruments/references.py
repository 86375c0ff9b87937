"""Speaker references, for similarity and for synthesis prompts: a speaker's accepted clips in
the store (from vetting), or files and folders given with `--reference speaker=path`.

Two embeddings per speaker:
- the centroid: the unit mean of the reference clips' embeddings (what `sim` compares with);
- the prompt: one clip, the one a cloning system would be given (what `sim_o` compares with).
  When the manifest names the prompt of an item, that clip is used; otherwise the speaker's
  default prompt, the 3-10 s reference clip closest to the centroid (the longest clip when none
  is 3-10 s). Synthesis (`synth --speaker`, model-mode evaluation, the voice service) uses the
  same clip as its reference audio, with the clip's text from the store (`prompt_from_store`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from clonebench.core import audio
from clonebench.core.errors import AudioError, UserError
from clonebench.core.languages import AUTO, SYNTH_LANGS
from clonebench.store import TIMBRE_PREFIX, SpeakerPrompt, Store

log = logging.getLogger(__name__)
SR = 16000
PROMPT_RANGE_S = (3.0, 10.0)


@dataclass
class SpeakerReference:
    speaker: str
    centroid: np.ndarray
    prompt_path: str
    prompt_embedding: np.ndarray
    n_clips: int
    source: str  # "store" or "--reference"


def choose_prompt(embeddings: np.ndarray, durations: list[float], centroid: np.ndarray) -> int:
    lo, hi = PROMPT_RANGE_S
    fitting = [i for i, d in enumerate(durations) if lo <= d <= hi]
    if not fitting:
        return int(np.argmax(durations))
    return max(fitting, key=lambda i: float(embeddings[i] @ centroid))


def _build(speaker: str, paths: list[str], embeddings: list[np.ndarray], durations: list[float], source: str) -> SpeakerReference:
    from clonebench.instruments.speakers import centroid as speaker_centroid
    from clonebench.instruments.speakers import unit_rows

    embs = unit_rows(np.stack(embeddings))
    centroid = speaker_centroid(embs)
    k = choose_prompt(embs, durations, centroid)
    return SpeakerReference(speaker, centroid, paths[k], embs[k], len(paths), source)


def load_16k(path: Path) -> tuple[np.ndarray, float]:
    """Any audio file as 16 kHz mono, and the share of its raw samples that clipped."""
    decoded = audio.decode(path, max_duration_s=600)
    return audio.resample(decoded.samples, decoded.sample_rate, SR), float(decoded.clipped.mean())


def from_store(store: Store, speaker: str, encoder) -> SpeakerReference | None:
    """The speaker's accepted clips; embeddings the vetting run stored are reused when they come
    from the same encoder."""
    clips = [v.clip for v in store.accepted_clips([speaker])]
    stored, _ = store.embeddings([c.clip_id for c in clips], encoder.name)
    paths, embs, durs = [], [], []
    for c in clips:
        emb = stored.get(c.clip_id)
        if emb is None:
            try:
                emb = encoder.embedding(audio.read_wav(c.path_16k)[0])
            except (OSError, RuntimeError) as e:
                log.warning("reference clip %s of %s unreadable (%s); skipped", c.path_16k, speaker, e)
                continue
        paths.append(c.path_16k)
        embs.append(emb)
        durs.append(c.duration_s)
    return _build(speaker, paths, embs, durs, "store") if paths else None


def from_paths(speaker: str, inputs: list[Path], encoder) -> tuple[SpeakerReference | None, list[str]]:
    """Reference files (folders searched recursively). Unreadable files are reported, not fatal."""
    files, missing = audio.find_audio(inputs)
    errors = [m["error"] for m in missing]
    paths, embs, durs = [], [], []
    for f in files:
        try:
            x, _ = load_16k(f)
        except AudioError as e:
            errors.append(f"reference for {speaker}: {e}")
            continue
        paths.append(str(f))
        embs.append(encoder.embedding(x))
        durs.append(len(x) / SR)
    return (_build(speaker, paths, embs, durs, "--reference") if paths else None), errors


@dataclass(frozen=True)
class PromptChoice:
    """A synthesis prompt: the reference audio at 16 kHz (content features) and at 32 kHz, from
    the original file (the style spectrogram reads up to 16 kHz; None: the 16 kHz clip upsampled,
    with nothing above 8 kHz), and the words spoken in it. `Synthesizer.reference` takes it whole."""
    wav16: np.ndarray
    wav32: np.ndarray | None
    text: str
    lang: str
    source: str               # file the reference came from
    speaker_embedding: np.ndarray | None = None
    timbre: np.ndarray | None = None   # the speaker's v2Pro timbre-library vector, when vetting made one


def prompt_from_store(db: Path, speaker: str, encoder=None) -> PromptChoice:
    """The speaker's accepted clip (3-10 s, closest to the centroid) and its transcript.
    `encoder` (Resemblyzer by default) embeds clips the store has no vector for."""
    from .speakers import SpeakerEncoder

    with Store(db, read_only=True) as store:
        given = store.speaker_prompt(speaker)
        timbre = store.newest_speaker_embedding(speaker, TIMBRE_PREFIX)
        picked = store.clip_view(given.clip_id) if given is not None and given.clip_id else None
        if given is None:
            ref = from_store(store, speaker, encoder or SpeakerEncoder())
            if ref is None:
                raise UserError(f"speaker {speaker!r} has no accepted clips in {db}: vet recordings first")
            view = store.clip_by_path(ref.prompt_path)
    if given is not None and given.clip_id:   # a reviewer picked one of the speaker's clips
        if given.lang not in PROMPT_LANGS:
            raise UserError(unreadable_prompt(speaker, given.lang))
        return PromptChoice(audio.read_wav(picked.clip.path_16k)[0], audio.read_wav(picked.clip.path_32k)[0], given.text,
                            given.lang, picked.clip.path_16k, None, timbre[1] if timbre else None)
    if given is not None:   # a person gave a file (`clonebench prompt set`)
        return replace(prompt_from_file(Path(given.path), given.text, given.lang), timbre=timbre[1] if timbre else None)
    if view is None or not (view.text or "").strip():
        raise UserError(f"the reference clip {ref.prompt_path} of {speaker!r} has no transcript: "
                        f"give one with `clonebench prompt set {speaker} --audio FILE --text TEXT --lang en|zh`")
    lang = view.lang
    if lang not in PROMPT_LANGS:
        raise UserError(unreadable_prompt(speaker, lang))
    wav16, _ = audio.read_wav(ref.prompt_path)
    wav32, _ = audio.read_wav(view.clip.path_32k)   # cached at 32 kHz from the original recording
    return PromptChoice(wav16, wav32, view.text, lang, ref.prompt_path, ref.centroid,
                        timbre[1] if timbre else None)


PROMPT_LANGS = tuple(lang for lang in SYNTH_LANGS if lang != AUTO)   # the languages a prompt's text may be in


def unreadable_prompt(speaker: str, lang: str | None) -> str:
    """Why a ready speaker cannot be spoken: the store's prompt is in a language the front end does not read."""
    return (f"{speaker}'s clips are in {lang!r}, which the text front end does not read ({', '.join(PROMPT_LANGS)}): "
            f"give a prompt with `clonebench prompt set {speaker} --audio FILE --text TEXT --lang en`")


def why_not_servable(speaker: str, status: str, lang: str | None, given: SpeakerPrompt | None) -> str | None:
    """None when synthesis (and a server) can speak in the speaker's voice; else why not, in one
    line a person can act on: enrolled, with a prompt in a language the front end reads."""
    if status != "ready":
        return f"speaker {speaker!r} is {status}, not ready: vet more of their audio"
    prompt_lang = given.lang if given is not None else lang
    return None if prompt_lang in PROMPT_LANGS else unreadable_prompt(speaker, prompt_lang)


def give_prompt(db: Path, speaker: str, audio_file: Path, text: str, lang: str, set_by: str | None) -> SpeakerPrompt:
    """Record a person's prompt for `speaker`: the file is decoded, kept at 32 kHz in the store's
    folder (`prompts/`, so the store can move) and named in `speaker_prompts`."""
    import hashlib

    from clonebench.core.config import data_root_for

    if lang not in PROMPT_LANGS:
        raise UserError(f"--lang {lang}: the text front end reads {', '.join(PROMPT_LANGS)}")
    if not text.strip():
        raise UserError("--text is required: the words spoken in the prompt")
    with Store(db) as store:
        if store.speaker(speaker) is None:
            raise UserError(f"unknown speaker {speaker!r} in {db}")
        decoded = audio.decode(Path(audio_file), max_duration_s=60)
        wav32 = audio.resample(decoded.samples, decoded.sample_rate, 32000)
        if not 1.0 <= len(wav32) / 32000 <= 30.0:
            raise UserError(f"{audio_file}: a prompt must be 1-30 s long (3-10 s is best), not {len(wav32) / 32000:.1f} s")
        digest = hashlib.sha256(Path(audio_file).read_bytes()).hexdigest()[:12]
        out = data_root_for(db) / "prompts" / f"{speaker}-{digest}.wav"
        audio.write_wav(out, wav32, 32000)
        prompt = SpeakerPrompt(speaker, str(out), text.strip(), lang, str(Path(audio_file).resolve()), set_by)
        store.put_speaker_prompt(prompt)
    return prompt


def prompt_from_file(path: Path, text: str, lang: str) -> PromptChoice:
    """A reference file the user names (`synth --ref-audio`) with the words spoken in it."""
    if not text or not text.strip():
        raise UserError("--prompt-text is required with --ref-audio (the words spoken in the reference)")
    decoded = audio.decode(Path(path), max_duration_s=600)
    wav16 = audio.resample(decoded.samples, decoded.sample_rate, SR)
    wav32 = audio.resample(decoded.samples, decoded.sample_rate, 32000)
    return PromptChoice(wav16, wav32, text, lang, str(path))
