"""OpenAI's speech API, for apps written against it (`openai` client with base_url=.../v1):

POST /v1/audio/speech   {model, input (<= 4096 characters), voice (an enrolled speaker),
                        response_format: mp3|opus|aac|flac|wav|pcm, speed, stream_format: audio|sse}
                        -> audio at 24 kHz as OpenAI answers (pcm: raw 16-bit mono), streamed
                        sentence by sentence; with "sse", speech.audio.delta / speech.audio.done events
GET  /v1/models         the one model served, under the name "clonebench" (any name is accepted)

Errors are OpenAI's `{"error": {"message", "type", "code"}}`, so the client's exception carries
the message. `instructions` is refused (422): a voice's style comes from its reference clip.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .protocol import OPENAI_RATE, HTTPError, OpenAIErrorResponse, SpeechRequest
from .respond import audio_answer, new_job, speak
from .service import resolve_seed

router = APIRouter()
MODEL_ID = "clonebench"
STARTED = int(time.time())

ERRORS = {status: {"model": OpenAIErrorResponse, "description": what} for status, what in (
    (401, "missing or wrong API key"), (404, "unknown voice"), (409, "voice not servable"),
    (413, "input too long"), (422, "bad request"), (503, "queue full (Retry-After)"), (504, "timed out"))}
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


@router.post("/v1/audio/speech", response_class=Response, responses={
    **audio_answer(FORMATS, "the audio at 24 kHz, as each sentence is ready", "text/event-stream"), **ERRORS})
async def speech(body: SpeechRequest, request: Request):
    if body.instructions and body.instructions.strip():
        raise HTTPError(422, "instructions are not supported: a voice speaks in the style of its reference clip "
                             "(give the speaker another prompt with `clonebench prompt set`)")
    job = new_job(request, "/v1/audio/speech", text=body.input, speaker=body.voice, format=body.response_format,
                  stream=True, speed=body.speed, seed=resolve_seed(0), rate=OPENAI_RATE,
                  events=body.stream_format == "sse")
    return await speak(request, job)


def _model() -> dict:
    return {"id": MODEL_ID, "object": "model", "created": STARTED, "owned_by": "clonebench"}


@router.get("/v1/models")
async def models() -> dict:
    return {"object": "list", "data": [_model()]}


@router.get("/v1/models/{model}")
async def model(model: str) -> dict:
    if model != MODEL_ID:
        raise HTTPError(404, f"the model {model!r} does not exist: this server serves {MODEL_ID!r}")
    return _model()
