"""A store as `vet` leaves it, built without running the models: speakers, one recording each
sliced into clips (real WAV files at 32 and 16 kHz, cut from a recording file on disk), metrics,
ASR and given texts, the built-in rule set's verdicts and the enrolments they give. For the
review app's tests and its 500-clip benchmark, where what matters is the store's shape, not
what the screens would measure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from clonebench.core import audio
from clonebench.curate.reviews import settle
from clonebench.curate.rules import REASONS, RuleSet
from clonebench.store import ASR, Clip, Recording, Store, Transcript, Verdict

from .phrasebook import SENTENCES

CLIP_S = 4.0
GAP_S = 0.5


def _voice(seconds: float, sr: int, seed: int) -> np.ndarray:
    """A voiced buzz with syllable-like bursts: something to see in a waveform and hear."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 40 * rng.random()
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * (3 + rng.random()) * t), 0, None)
    return (0.2 * x * envelope + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def build(folder: Path, speakers: tuple[str, ...] = ("ann", "bob"), clips: int = 12, reject_every: int = 4,
          texts: dict[str, str] | None = None, clip_s: float = CLIP_S) -> Path:
    """A store at `folder/store.duckdb`: every `reject_every`-th clip rejected by the rules (the
    reasons cycle), the rest accepted; `texts` replaces the ASR text of the clips named. Returns
    the store's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "store.duckdb"
    rules = RuleSet.load()
    phrases = SENTENCES["en"]
    with Store(db) as store:
        store.record_rule_set(rules.version, rules.thresholds(), "built-in")
        for n, speaker in enumerate(speakers):
            store.put_speaker(speaker, "en")
            step = clip_s + GAP_S
            x = _voice(clips * step + GAP_S, 16000, n)
            source = folder / "recordings" / f"{speaker}.wav"
            audio.write_wav(source, x, 16000)
            sha = hashlib.sha256(source.read_bytes()).hexdigest()
            rec = Recording(sha, speaker, str(source), "wav", 16000, 1, len(x) / 16000, "synthetic")
            made, metrics, verdicts = [], {}, []
            for i in range(clips):
                clip_id = f"{speaker}-{i:04d}"
                a = GAP_S + i * step
                seg = x[int(a * 16000):int((a + clip_s) * 16000)]
                p16, p32 = folder / "clips" / f"{clip_id}.16k.wav", folder / "clips" / f"{clip_id}.wav"
                audio.write_wav(p16, seg, 16000)
                audio.write_wav(p32, audio.resample(seg, 16000, 32000), 32000)
                made.append(Clip(clip_id, sha, speaker, a, a + clip_s, clip_s, str(p32), str(p16), "synthetic"))
                rng = np.random.default_rng(hash((n, i)) % 2**32)
                metrics[clip_id] = {"snr_db": float(15 + 20 * rng.random()), "dnsmos_ovrl": float(2.5 + rng.random()),
                                    "scene_music": float(rng.random() * 0.3), "scene_overlap": float(rng.random() * 0.3),
                                    "rt60_s": float(0.2 + 0.4 * rng.random()), "articulation_rate": float(3.5 + 2 * rng.random()),
                                    "spk_centroid_cos": float(0.6 + 0.3 * rng.random()),
                                    "asr_avg_logprob": float(-0.05 - 1.0 * rng.random())}
                reasons = (REASONS[(i // reject_every) % len(REASONS)],) if reject_every and i % reject_every == reject_every - 1 else ()
                verdicts.append(Verdict(clip_id, rules.version, "rejected" if reasons else "accepted", reasons, ()))
            store.add_recording(rec, made, metrics, "synthetic")
            with store.transaction():
                for c in made:
                    text = (texts or {}).get(c.clip_id, phrases[int(c.clip_id[-4:]) % len(phrases)])
                    store.put_asr(Transcript(c.clip_id, ASR, text, "en", 0.99, "clip",
                                             metrics[c.clip_id]["asr_avg_logprob"], "synthetic"), [])
                store.record_verdicts(rules.version, [c.clip_id for c in made], verdicts)
                settle(store, speaker, rules)
    return db
