"""Audio as a client asked for it: the whole answer as one file, or a stream that is a valid file
from its first byte, sentence by sentence.

Sentences come from the model at 32 kHz; a route may want another rate (OpenAI's speech API
answers at 24 kHz). A stream resamples with one `soxr.ResampleStream`, so sentence joins are
seamless. Streamed formats:
- `wav`: a header with an open length (0xFFFFFFFF), then 16-bit PCM;
- `pcm`: raw 16-bit little-endian PCM;
- `flac`, `mp3`, `opus` (Ogg), `aac` (ADTS), `ogg` (Vorbis): one PyAV encoder kept open for the
  whole answer, its bytes sent as each sentence is encoded. A streamed FLAC says "total samples
  unknown" in its STREAMINFO, as the FLAC format allows for streams: ffmpeg, sox and PyAV read
  it, libsndfile (`soundfile`) does not; ask for a whole (non-streamed) FLAC to use soundfile.
"""

from __future__ import annotations

import io

import numpy as np

from clonebench.core.audio import encode, pcm16, resample

from .protocol import wav_header

# format -> (PyAV container, codec, the rate the codec must run at or None)
_AV = {"flac": ("flac", "flac", None), "mp3": ("mp3", "libmp3lame", None), "opus": ("ogg", "libopus", 48000),
       "aac": ("adts", "aac", None), "ogg": ("ogg", "libvorbis", None)}
STREAMABLE = ("wav", "pcm", *_AV)


def whole(wav32: np.ndarray, fmt: str, rate: int) -> bytes:
    """A whole answer: 32 kHz audio as one file in `fmt` at `rate`."""
    if fmt == "ogg":   # Vorbis, GPT-SoVITS api_v2's `ogg`, which core.audio.encode does not make
        stream = AudioStream(fmt, rate)
        return stream.start() + stream.write(wav32) + stream.finish()
    return encode(resample(wav32, 32000, rate).astype(np.float32) if rate != 32000 else wav32, rate, fmt)


class _Sink(io.RawIOBase):
    """What PyAV writes into: not seekable, so the muxer never goes back over bytes already sent."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b) -> int:
        self.buf += bytes(b)
        return len(b)

    def take(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


class AudioStream:
    """`start()`, then `write(sentence)` for each 32 kHz sentence, then `finish()`: the bytes
    of one file in `fmt` at `rate`, in pieces a response can send as they come."""

    def __init__(self, fmt: str, rate: int = 32000):
        import soxr

        if fmt not in STREAMABLE:
            raise ValueError(f"cannot stream {fmt!r}")
        self.fmt, self.rate = fmt, rate
        self.codec_rate = (_AV[fmt][2] if fmt in _AV else None) or rate
        self._resampler = soxr.ResampleStream(32000, self.codec_rate, 1, dtype="float32") \
            if self.codec_rate != 32000 else None
        self._out = self._stream = None
        self._sink = _Sink()

    def start(self) -> bytes:
        if self.fmt == "wav":
            return wav_header(self.rate)
        if self.fmt in _AV:
            import av

            container, codec, _ = _AV[self.fmt]
            self._out = av.open(self._sink, "w", format=container)
            self._stream = self._out.add_stream(codec, rate=self.codec_rate)
            self._stream.layout = "mono"
            if codec == "flac":
                self._stream.format = "s16"       # 16-bit FLAC, the same samples as wav and pcm
        return b""

    def write(self, wav32: np.ndarray) -> bytes:
        x = np.clip(np.asarray(wav32, dtype=np.float32), -1.0, 1.0)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        return self._encode(x)

    def finish(self) -> bytes:
        tail = b""
        if self._resampler is not None:
            tail = self._encode(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        if self._out is None:
            return tail
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        self._out = None
        return tail + self._sink.take()

    def close(self) -> None:
        """Give the encoder back without finishing (the client left)."""
        if self._out is not None:
            self._out.close()
            self._out = None

    def _encode(self, x: np.ndarray) -> bytes:
        if self._out is None:
            return pcm16(x)
        import av

        if len(x):
            if self.fmt == "flac":   # 16-bit rounded as pcm16 rounds, so a streamed FLAC has the whole file's samples
                frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm16(x), "<i2")[None, :], format="s16", layout="mono")
            else:
                frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
            frame.sample_rate = self.codec_rate
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
        return self._sink.take()
