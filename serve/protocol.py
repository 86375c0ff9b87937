"""What a client of `clonebench serve` sees: the request bodies, the error body, the media types
and the WAV header of a stream. Nothing here loads a model."""

from __future__ import annotations

import struct
from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

SAMPLE_RATE = 32000
MEDIA = {"wav": "audio/wav", "pcm": "audio/L16", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg",
         "aac": "audio/aac"}


class TTSRequest(BaseModel):
    text: str = Field(description="What to say.")
    speaker: str = Field(description="An enrolled speaker (GET /v1/speakers).")
    lang: str = Field("auto", description="zh, en or auto (mixed).")
    format: Literal["wav", "pcm", "flac"] = "wav"
    stream: bool = False
    seed: int = 0
    speed: float = Field(1.0, ge=0.25, le=4.0)
    top_k: int = Field(15, ge=1, le=1025)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0, le=10.0)


class SpeechRequest(BaseModel):
    """OpenAI's `audio.speech.create` body; `voice` is an enrolled speaker."""
    model: str = "clonebench"
    input: str
    voice: str
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)


class ErrorResponse(BaseModel):
    """Every error's body: one line."""
    error: str


class HTTPError(Exception):
    """An error the client gets as its status and an `ErrorResponse`."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=message).model_dump(), status_code=status, headers=headers)


def audio_headers(request_id: str) -> dict[str, str]:
    """Every audio answer, whole or streamed, says its rate and its request's id (the log's key)."""
    return {"X-Sample-Rate": str(SAMPLE_RATE), "X-Request-Id": request_id}


def wav_header(sample_rate: int, n_samples: int | None = None) -> bytes:
    """A 16-bit mono WAV header; with no length, the sizes say 'unknown' (0xFFFFFFFF) for streaming."""
    data = 0xFFFFFFFF if n_samples is None else n_samples * 2
    riff = 0xFFFFFFFF if n_samples is None else 36 + data
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate,
                                                                          sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))
