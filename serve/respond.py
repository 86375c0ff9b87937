"""What every synthesis route of the three APIs does once it has parsed its body: make the
`SpeechJob` under the gate's request id, ask the `Service`, and answer with the audio."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from .protocol import MEDIA, audio_headers
from .service import Service, SpeechJob


def audio_answer(formats: tuple[str, ...], what: str, *extra_media: str) -> dict:
    """How a synthesis route documents its 200: these formats' media types (and any others)."""
    return {200: {"description": what, "content": {m: {} for m in (*(MEDIA[f] for f in formats), *extra_media)}}}


def service_of(request: Request) -> Service:
    return request.app.state.service


def new_job(request: Request, endpoint: str, **fields) -> SpeechJob:
    """The request's `SpeechJob`, under the id the gate gave it."""
    state = request.state
    return SpeechJob(endpoint, state.request_id, state.received_at, **fields)


async def speak(request: Request, job: SpeechJob) -> Response:
    """The job's audio as the answer: whole, streamed, or as server-sent events."""
    audio = await service_of(request).synthesize(job, request.is_disconnected)
    headers = audio_headers(job.rate, job.seed)
    media = "text/event-stream" if job.events else MEDIA[job.format]
    if job.stream:
        return StreamingResponse(audio, media_type=media, headers=headers)
    return Response(audio, media_type=media, headers=headers)
