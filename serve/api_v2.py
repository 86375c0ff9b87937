"""GPT-SoVITS `api_v2.py`'s routes, so that applications written for it move over unchanged:

GET|POST /tts                 text, text_lang, ref_audio_path, prompt_text, prompt_lang, top_k, top_p,
                              temperature, repetition_penalty, text_split_method, speed_factor, seed,
                              media_type (wav|raw|ogg|aac), streaming_mode -> audio at 32 kHz
GET      /set_gpt_weights     ?weights_path=FILE under --weights-dir: serve with another GPT
GET      /set_sovits_weights  ?weights_path=FILE under --weights-dir: serve with another SoVITS

`ref_audio_path` is an enrolled speaker's name (its prompt from the store; `prompt_text` and
`prompt_lang` are then not needed), or a file under the folder the operator gave with
--ref-dir, with the words spoken in it (`prompt_text`, `prompt_lang`). Any other path is
refused (403): a client never makes the server read a file the operator did not offer.
Status codes and error bodies are those of /v1/tts (upstream answers 400 for every failure).
What each parameter means here, and those accepted but ignored, is in the README's table.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clonebench.core.errors import UserError

from .options import inside
from .protocol import ApiV2Request, HTTPError
from .respond import audio_answer, new_job, service_of, speak
from .service import FilePrompt, resolve_seed

router = APIRouter()
MEDIA_TYPES = {"wav": "wav", "raw": "pcm", "ogg": "ogg", "aac": "aac"}    # api_v2's names -> ours


def _lang(code: str | None, name: str) -> str:
    """api_v2's language codes: `all_zh` (no English runs) is read as `zh`, `zh`/`en`/`auto` as ours."""
    if not code:
        raise HTTPError(422, f"{name} is required")
    code = code.lower()
    return code[4:] if code.startswith("all_") else code


async def _tts(request: Request, body: ApiV2Request):
    from clonebench.model.decode import SamplingParams

    if not body.text:
        raise HTTPError(422, "text is required")
    if not body.ref_audio_path:
        raise HTTPError(422, "ref_audio_path is required: an enrolled speaker, or a file under the server's --ref-dir")
    if body.streaming_mode not in (True, False, 0, 1, 2, 3):
        raise HTTPError(422, "streaming_mode must be 0, 1, 2, 3 or true/false")
    text_lang = _lang(body.text_lang, "text_lang")
    service = service_of(request)
    known = await asyncio.to_thread(lambda: body.ref_audio_path in service.voices.refresh())
    speaker, prompt = body.ref_audio_path, None
    if not known:
        if not body.prompt_text.strip():
            raise HTTPError(422, "prompt_text is required with a reference file (the words spoken in it)")
        path = inside(request.app.state.opts.ref_dir, body.ref_audio_path, "--ref-dir")
        speaker, prompt = None, FilePrompt(path, body.prompt_text, _lang(body.prompt_lang, "prompt_lang"))
    params = SamplingParams(top_k=body.top_k, top_p=body.top_p, temperature=body.temperature,
                            repetition_penalty=body.repetition_penalty)
    job = new_job(request, "/tts", text=body.text, speaker=speaker, prompt=prompt, lang=text_lang,
                  format=MEDIA_TYPES[body.media_type], stream=bool(body.streaming_mode), params=params,
                  seed=resolve_seed(body.seed), speed=body.speed_factor)
    return await speak(request, job)


AUDIO = audio_answer(tuple(MEDIA_TYPES.values()), "the audio at 32 kHz")


@router.get("/tts", response_class=Response, responses=AUDIO)
async def tts_get(request: Request, query: Annotated[ApiV2Request, Query()]):
    return await _tts(request, query)


@router.post("/tts", response_class=Response, responses=AUDIO)
async def tts_post(request: Request, body: ApiV2Request):
    return await _tts(request, body)


async def _swap(request: Request, weights_path: str | None, kind: str) -> dict:
    if not weights_path:
        raise HTTPError(422, "weights_path is required")
    path = inside(request.app.state.opts.weights_dir, weights_path, "--weights-dir")
    try:
        return await asyncio.to_thread(service_of(request).swap, **{kind: path})
    except UserError as e:    # not a checkpoint we can load: the old model keeps serving
        raise HTTPError(422, str(e)) from None


@router.get("/set_gpt_weights")
async def set_gpt_weights(request: Request, weights_path: str | None = None) -> dict:
    """Serve with another GPT file from now on; requests in flight finish on the old one."""
    return await _swap(request, weights_path, "gpt")


@router.get("/set_sovits_weights")
async def set_sovits_weights(request: Request, weights_path: str | None = None) -> dict:
    """Serve with another SoVITS file from now on; requests in flight finish on the old one."""
    return await _swap(request, weights_path, "sovits")
