"""What a client of `clonebench serve` sees: the request bodies, the error body, the media types
and the WAV header of a stream. Nothing here loads a model."""

from __future__ import annotations

import struct
from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

SAMPLE_RATE = 32000          # the model's rate: /v1/tts and /tts answer at it
OPENAI_RATE = 24000          # OpenAI's speech API answers at 24 kHz, pcm included
MAX_SEED = 2 ** 63 - 1       # a sentence's seed is (seed + its index) mod 2**63: always a valid torch seed
MEDIA = {"wav": "audio/wav", "pcm": "audio/L16", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg",
         "aac": "audio/aac", "ogg": "audio/ogg"}
SEED = Field(0, ge=-1, le=MAX_SEED, description="-1: a random seed; the seed used comes back in X-Seed")


class TTSRequest(BaseModel):
    text: str = Field(description="What to say.")
    speaker: str = Field(description="An enrolled speaker (GET /v1/speakers).")
    lang: str = Field("auto", description="zh, en, ja, ko, yue or auto (mixed: by script).")
    format: Literal["wav", "pcm", "flac"] = "wav"
    stream: bool = False
    seed: int = SEED
    speed: float = Field(1.0, ge=0.25, le=4.0)
    top_k: int = Field(15, ge=1, le=1025)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0, le=10.0)


class SpeechRequest(BaseModel):
    """OpenAI's `audio.speech.create` body; `voice` is an enrolled speaker, `model` any name (the
    server speaks with the model it loaded; GET /v1/models)."""
    model: str = "clonebench"
    input: str = Field(description="Up to 4096 characters, said sentence by sentence.")
    voice: str = Field(description="An enrolled speaker (GET /v1/speakers).")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = Field(
        "audio", description="audio: the file's bytes as each sentence is made; sse: speech.audio.delta events")
    instructions: str | None = Field(None, description="Refused when given: a voice's style comes from its reference.")


class ApiV2Request(BaseModel):
    """GPT-SoVITS `api_v2.py`'s /tts parameters (GET query or POST body). `ref_audio_path` is an
    enrolled speaker, or a file under the server's --ref-dir with `prompt_text`."""
    text: str | None = None
    text_lang: str | None = None
    ref_audio_path: str | None = None
    prompt_text: str = ""
    prompt_lang: str | None = None
    top_k: int = Field(15, ge=1, le=1025)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0, le=10.0)
    repetition_penalty: float = Field(1.35, ge=1.0, le=10.0)
    text_split_method: Literal["cut0", "cut1", "cut2", "cut3", "cut4", "cut5"] = "cut5"
    speed_factor: float = Field(1.0, ge=0.25, le=4.0)
    seed: int = Field(-1, ge=-1, le=MAX_SEED)
    media_type: Literal["wav", "raw", "ogg", "aac"] = "wav"
    streaming_mode: bool | int = False
    # accepted so that clients written for api_v2 work; they change nothing here (README)
    aux_ref_audio_paths: list[str] | None = None
    batch_size: int = 1
    batch_threshold: float = 0.75
    split_bucket: bool = True
    fragment_interval: float = 0.3
    parallel_infer: bool = True
    sample_steps: int = 32
    super_sampling: bool = False
    overlap_length: int = 2
    min_chunk_length: int = 16


class ErrorResponse(BaseModel):
    """The error body of /v1/tts, /tts and the rest: one line."""
    error: str


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class OpenAIErrorResponse(BaseModel):
    """The error body of the OpenAI routes (/v1/audio/*, /v1/models), which OpenAI's client reads."""
    error: OpenAIErrorDetail


OPENAI_PATHS = ("/v1/audio/", "/v1/models")
_CODES = {400: "bad_request", 401: "invalid_api_key", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "voice_not_ready", 413: "too_long", 422: "invalid_request", 499: "cancelled", 500: "internal_error",
          503: "overloaded", 504: "timeout"}


class HTTPError(Exception):
    """An error the client gets as its status and an `ErrorResponse`."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(status: int, message: str, headers: dict | None = None, path: str = "") -> JSONResponse:
    """`message` as `path`'s API writes errors: OpenAI's shape on its routes, one line elsewhere."""
    if path.startswith(OPENAI_PATHS):
        kind = "server_error" if status >= 500 else "invalid_request_error"
        body = OpenAIErrorResponse(error=OpenAIErrorDetail(message=message, type=kind, code=_CODES.get(status)))
    else:
        body = ErrorResponse(error=message)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def audio_headers(sample_rate: int, seed: int) -> dict[str, str]:
    """Every audio answer, whole or streamed, says its rate and the seed it was made with (the
    request's id, the log's key, is on every answer: `gate.Gate`)."""
    return {"X-Sample-Rate": str(sample_rate), "X-Seed": str(seed)}


def wav_header(sample_rate: int, n_samples: int | None = None) -> bytes:
    """A 16-bit mono WAV header; with no length, the sizes say 'unknown' (0xFFFFFFFF) for streaming."""
    data = 0xFFFFFFFF if n_samples is None else n_samples * 2
    riff = 0xFFFFFFFF if n_samples is None else 36 + data
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate,
                                                                          sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))
