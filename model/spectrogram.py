"""Linear and mel spectrograms at 32 kHz, as SoVITS uses them (n_fft 2048, hop 640, Hann window)."""

from __future__ import annotations

from functools import lru_cache

import torch

from .config import HOP, N_FFT, N_MELS, SAMPLE_RATE


def linear_spectrogram(wav: torch.Tensor) -> torch.Tensor:
    """[B, samples] in [-1, 1] -> magnitude [B, 1025, samples // 640].

    Reflect-padded by (n_fft - hop) / 2 on each side with no centring, so frame i covers the
    samples of hop i; the magnitude has upstream's floor, 1e-8 inside the square root (1e-4).
    """
    pad = (N_FFT - HOP) // 2
    x = torch.nn.functional.pad(wav[:, None], (pad, pad), mode="reflect")[:, 0]
    window = torch.hann_window(N_FFT, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(x, N_FFT, HOP, N_FFT, window=window, center=False, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)


@lru_cache(maxsize=4)
def _mel_basis(device: str) -> torch.Tensor:
    import torchaudio

    fb = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE,
                                               norm="slaney", mel_scale="slaney")
    return fb.T.to(device)   # [128, 1025]


def mel_from_linear(spec: torch.Tensor) -> torch.Tensor:
    """Magnitude [B, 1025, T] -> log mel [B, 128, T] (log of values clamped at 1e-5)."""
    mel = _mel_basis(str(spec.device)).to(spec.dtype) @ spec
    return torch.log(mel.clamp(min=1e-5))


def mel_spectrogram(wav: torch.Tensor) -> torch.Tensor:
    return mel_from_linear(linear_spectrogram(wav))
