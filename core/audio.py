"""Audio I/O: decode any common format with PyAV, resample with soxr, write PCM wav.

Decoding keeps what the screens need from the *raw* input (before downmix and resampling):
a per-sample flag for samples at or near full scale, so clipping is measured on what the
user recorded, not on a resampled copy that smooths the flat tops away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AudioError

AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aif", ".aiff"}
FULL_SCALE = 0.99  # |x| at or above this fraction of full scale counts as clipped
DECODER_VERSION = "pyav-1"

# Integer sample formats are scaled to [-1, 1) by these divisors.
_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9.223372036854775808e18}


@dataclass
class DecodedAudio:
    samples: np.ndarray  # mono float32 at the native rate
    sample_rate: int
    channels: int
    codec: str
    clipped: np.ndarray  # bool per sample: any raw channel at/near full scale or on a flat top

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def _frame_to_float(frame) -> np.ndarray:
    """One decoded frame as float32 [channels, samples] in [-1, 1]."""
    fmt = frame.format.name
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    base = fmt.rstrip("p")
    if base in ("flt", "dbl"):
        return arr.astype(np.float32, copy=False)
    if base == "u8":
        return ((arr.astype(np.float32) - 128.0) / 128.0)
    if base in _INT_SCALE:
        return (arr.astype(np.float32) / _INT_SCALE[base])
    raise AudioError(f"unsupported sample format {fmt}")


def _flat_tops(x: np.ndarray, min_run: int = 3) -> np.ndarray:
    """Samples in runs of >= min_run equal values at the channel's own peak.

    Catches audio that clipped and was then turned down, which never reaches full scale.
    """
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 0.25:
        return np.zeros(x.shape, bool)
    at_peak = np.abs(x) >= peak * 0.999
    if not at_peak.any():
        return at_peak
    # a sample is on a flat top when it and its neighbours form a run of equal values at the peak
    same_next = np.concatenate([x[1:] == x[:-1], [False]]) & at_peak
    runs = np.zeros(x.shape, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], same_next.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start + 1 >= min_run:
            runs[start : stop + 1] = True
    return runs


def decode(path: Path, max_duration_s: float | None = None) -> DecodedAudio:
    """Decode the first audio stream of a file; raise AudioError with one clear line on failure."""
    import av

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except Exception as e:  # PyAV raises several error types for bad input
        raise AudioError(f"{path}: not a readable audio file ({type(e).__name__})") from None
    try:
        if not container.streams.audio:
            raise AudioError(f"{path}: contains no audio stream")
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or stream.rate
        if not sr:
            raise AudioError(f"{path}: unknown sample rate")
        declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        if max_duration_s and declared and declared > max_duration_s:
            raise AudioError(
                f"{path}: {declared / 60:.1f} min long, over the {max_duration_s / 60:.0f} min limit "
                "per recording (split it, or raise --max-recording-min)"
            )
        mono_parts, clip_parts = [], []
        total = 0
        channels = 0
        try:
            for frame in container.decode(stream):
                if frame.sample_rate != sr:
                    raise AudioError(f"{path}: sample rate changes mid-stream ({sr} -> {frame.sample_rate} Hz)")
                x = _frame_to_float(frame)
                channels = max(channels, x.shape[0])
                mono_parts.append(x.mean(axis=0))
                clip_parts.append(x)  # flags are computed per channel once the whole file is in
                total += x.shape[1]
                if max_duration_s and total > max_duration_s * sr:
                    raise AudioError(
                        f"{path}: longer than the {max_duration_s / 60:.0f} min limit per recording "
                        "(split it, or raise --max-recording-min)"
                    )
        except AudioError:
            raise
        except Exception as e:
            if total == 0:
                raise AudioError(f"{path}: not a decodable audio file ({type(e).__name__})") from None
            raise AudioError(f"{path}: corrupt audio after {total / sr:.1f} s ({type(e).__name__})") from None
        if total == 0:
            raise AudioError(f"{path}: contains no audio samples")
        raw = np.concatenate(clip_parts, axis=1)
        clipped = np.zeros(raw.shape[1], bool)
        for ch in raw:
            clipped |= (np.abs(ch) >= FULL_SCALE) | _flat_tops(ch)
        del raw, clip_parts
        mono = np.concatenate(mono_parts).astype(np.float32)
        if not np.isfinite(mono).all():
            raise AudioError(f"{path}: contains NaN or infinite samples")
        return DecodedAudio(mono, int(sr), channels, stream.codec_context.name, clipped)
    finally:
        container.close()


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    """Write 16-bit PCM atomically (temp file + rename), so a kill never leaves half a file."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    sf.write(str(tmp), np.clip(x, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    tmp.replace(path)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    if x.ndim > 1:
        x = x.mean(axis=1)
    return x, sr


def find_audio(inputs: list[Path]) -> tuple[list[Path], list[dict]]:
    """Files named directly are taken whatever their extension; folders are searched
    recursively for audio extensions. Missing inputs become error rows."""
    files, errors = [], []
    for p in inputs:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            files.append(p)
        else:
            errors.append({"source": str(p), "error": f"{p}: no such file or folder"})
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, errors


# format -> (container, codec) for PyAV; wav, flac and raw PCM need no encoder library
_AV_FORMATS = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"), "aac": ("adts", "aac"), "m4a": ("mp4", "aac")}
ENCODINGS = ("wav", "flac", "pcm", *_AV_FORMATS)


def pcm16(x: np.ndarray) -> bytes:
    """Raw 16-bit little-endian PCM, rounded as libsndfile rounds (so it equals a 16-bit wav's data)."""
    return np.rint(np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()


def encode(x: np.ndarray, sr: int, fmt: str) -> bytes:
    """Mono float audio as the bytes of a file in `fmt` (ENCODINGS); `pcm` is raw 16-bit little-endian."""
    import io

    x = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    if fmt == "pcm":
        return pcm16(x)
    if fmt in ("wav", "flac"):
        import soundfile as sf

        buf = io.BytesIO()   # written from the same 16-bit samples as `pcm`, so all three agree
        sf.write(buf, np.frombuffer(pcm16(x), dtype="<i2"), sr, format=fmt.upper(), subtype="PCM_16")
        return buf.getvalue()
    if fmt not in _AV_FORMATS:
        raise AudioError(f"cannot encode {fmt!r}: use one of {', '.join(ENCODINGS)}")
    import av

    container, codec = _AV_FORMATS[fmt]
    if codec == "libopus":  # Opus only runs at 48 kHz
        x, sr = resample(x, sr, 48000).astype(np.float32), 48000
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=sr)
        stream.layout = "mono"
        for i in range(0, len(x), 1024):
            frame = av.AudioFrame.from_ndarray(x[i:i + 1024][None, :], format="flt", layout="mono")
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
