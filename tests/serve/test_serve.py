"""`clonebench serve` as a user runs it: a real uvicorn server in a subprocess on a free loopback
port, a `tiny` model made here, a store vetted from real speech; real HTTP clients (httpx and
OpenAI's own client)."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli, start_server, write

from clonebench.testing import corpus

KEY = "test-key-0123456789"
XSS = "<script>window.__xss = 1</script>"


def _vet(db, root, speaker: str, start: int, seconds: float = 75, lang: str = "en", status: str = "ready",
         folder: str | None = None) -> None:
    _, audio = corpus.take_seconds(corpus.prompts(lang), seconds, start=start)
    for k in range(0, len(audio), 2):
        write(root / (folder or speaker) / f"take{k:02d}.wav", corpus.join(audio[k:k + 2], gap_s=0.3))
    code, doc, err = run_cli("vet", str(root / (folder or speaker)), "--speaker", speaker, "--lang", lang, "--db", str(db),
                             "--no-report", "--json")
    assert code == 0 and doc["enrollment"]["status"] == status, err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import httpx

    root = tmp_path_factory.mktemp("serve")
    db = root / "store" / "clonebench.duckdb"
    _vet(db, root / "audio", "alice", 0)
    _vet(db, root / "audio", "june", 0, seconds=70, lang="fr")             # ready, but French: not servable
    _vet(db, root / "audio", "carol", 40, seconds=20, status="insufficient")
    code, model, err = run_cli("init-model", "--preset", "tiny", "--out", str(root / "model"))
    assert code == 0, err
    code, other, err = run_cli("init-model", "--preset", "tiny", "--seed", "1", "--out", str(root / "weights"))
    assert code == 0, err
    (root / "weights" / "broken.pth").write_bytes(b"not a checkpoint")
    _, audio = corpus.take_seconds(corpus.prompts("en"), 5, start=30)
    write(root / "refs" / "caller.wav", corpus.join(audio, gap_s=0.2))
    (root / "keys.txt").write_text(f"# the test's key\n{KEY}\n")
    proc, base = start_server("--gpt", model["gpt"], "--sovits", model["sovits"], "--db", str(db), "--api-keys",
                              str(root / "keys.txt"), "--max-batch", "8", "--batch-window-ms", "300", "--max-chars", "150",
                              "--ref-dir", str(root / "refs"), "--weights-dir", str(root / "weights"))
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=300)
    yield {"proc": proc, "base": base, "client": client, "db": db, "root": root, "model": model, "other": other,
           "ids": {}}
    client.close()
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def _tts(client, text: str, **kw):
    return client.post("/v1/tts", json={"text": text, "speaker": "alice", **kw})


def test_keys_are_required_and_a_wav_comes_back(server):
    import httpx

    base, client = server["base"], server["client"]
    assert httpx.get(f"{base}/healthz").status_code == 200                      # liveness needs no key
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(f"{base}/v1/tts", json={"text": "Hello.", "speaker": "alice"}, headers=headers)
        assert r.status_code == 401 and r.json() == {"error": "missing or wrong API key (send Authorization: Bearer KEY)"}
    speakers = {s["speaker"]: s for s in client.get("/v1/speakers").json()}
    assert speakers["alice"]["status"] == "ready" and speakers["alice"]["accepted_s"] >= 60
    r = _tts(client, "Please enter your password, followed by the pound key.")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    x, sr = sf.read(io.BytesIO(r.content))
    assert sr == 32000 and len(x) > 0.5 * sr and np.abs(x).max() > 0
    flac = _tts(client, "Please enter your password, followed by the pound key.", format="flac")
    y, _ = sf.read(io.BytesIO(flac.content))
    assert flac.headers["content-type"] == "audio/flac" and np.array_equal(x, y)   # same seed, same audio


def test_streaming_sends_the_first_sentence_before_the_last_is_done(server):
    client = server["client"]
    text = "Thank you for calling. Please hold the line. Your call is important to us. We will be with you soon."
    chunks, times, t0 = [], [], time.perf_counter()
    with client.stream("POST", "/v1/tts", json={"text": text, "speaker": "alice", "stream": True, "format": "pcm"}) as r:
        assert r.status_code == 200 and r.headers["x-sample-rate"] == "32000"
        for chunk in r.iter_raw():
            chunks.append(chunk)
            times.append(time.perf_counter() - t0)
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
    whole = _tts(client, text)
    x, _ = sf.read(io.BytesIO(whole.content), dtype="int16")
    assert np.array_equal(pcm, x)                                                # the stream is the same audio
    assert len(chunks) >= 3 and times[0] < times[-1] - 0.05                     # sentence by sentence


def test_concurrent_requests_are_batched_and_batching_changes_nothing(server):
    client = server["client"]
    texts = [f"Please enter the number {n}, then press the pound key." for n in range(8)]
    solo = _tts(client, texts[3], seed=11).content
    results: dict[int, bytes] = {}

    def go(k: int) -> None:
        r = _tts(client, texts[k], seed=11 if k == 3 else k)
        assert r.status_code == 200, r.text
        results[k] = r.content

    threads = [threading.Thread(target=go, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(8))
    assert results[3] == solo                                                    # batched == alone, same seed
    metrics = client.get("/metrics").text
    count = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("clonebench_batch_size_count")))
    total = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("clonebench_batch_size_sum")))
    assert total / count > 1.0                                                   # some passes held several sentences
    assert 'clonebench_requests_total{endpoint="/v1/tts",status="200"}' in metrics


@pytest.mark.parametrize("body, status, says", [
    ({"text": "x" * 151, "speaker": "alice"}, 413, "longer than the 150-character sentence cap"),
    ({"text": "Hello there. " * 320, "speaker": "alice"}, 413, "at most 4096"),
    ({"text": "Hello.", "speaker": "alice", "seed": 2 ** 64 - 1}, 422, "seed"),
    ({"text": "   ", "speaker": "alice"}, 422, "empty text"),
    ({"text": "Привет мир", "speaker": "alice"}, 422, "script"),
    ({"text": "Hello.", "speaker": "nobody"}, 404, "unknown speaker"),
    ({"text": "Hello.", "speaker": "alice", "speed": 9}, 422, "speed"),
    ({"text": "Hello.", "speaker": "alice", "lang": "xx"}, 422, "xx"),
    ({"speaker": "alice"}, 422, "text"),
])
def test_bad_input_gets_its_status_and_the_server_carries_on(server, body, status, says):
    client = server["client"]
    r = client.post("/v1/tts", json=body)
    assert r.status_code == status and says in r.json()["error"] and list(r.json()) == ["error"]
    assert len(r.headers["x-request-id"]) == 16                                 # errors carry their id too
    server["ids"][r.headers["x-request-id"]] = status
    assert _tts(client, "Hello there.").status_code == 200


def test_malformed_and_oversized_bodies(server):
    client = server["client"]
    r = client.post("/v1/tts", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json() == {"error": "the body is not valid JSON"}
    r = client.post("/v1/tts", content=b"text=hello", headers={"content-type": "text/plain"})
    assert 400 <= r.status_code < 500 and "error" in r.json()
    r = client.post("/v1/tts", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_the_openai_client_round_trips(server):
    from openai import OpenAI

    oai = OpenAI(base_url=f"{server['base']}/v1", api_key=KEY)
    wav = oai.audio.speech.create(model="clonebench", voice="alice", input="Hello from the OpenAI client.",
                                  response_format="wav")
    x, sr = sf.read(io.BytesIO(wav.content))
    assert sr == 24000 and len(x) > 0                                           # OpenAI's rate
    mp3 = oai.audio.speech.create(model="clonebench", voice="alice", input="And once more in mp3.")
    assert mp3.content[:3] == b"ID3" or mp3.content[:2] == b"\xff\xfb"
    from openai import AuthenticationError

    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server['base']}/v1", api_key="wrong").audio.speech.create(
            model="clonebench", voice="alice", input="no")


def test_a_speaker_vetted_while_serving_becomes_servable(server):
    client = server["client"]
    assert client.post("/v1/tts", json={"text": "Hello.", "speaker": "bob"}).status_code == 404
    _vet(server["db"], server["root"] / "audio", "bob", 120)                    # the server keeps running meanwhile
    assert client.get("/healthz").status_code == 200
    speakers = {s["speaker"]: s for s in client.get("/v1/speakers").json()}
    assert speakers["bob"]["status"] == "ready"
    assert client.post("/v1/tts", json={"text": "Hello from Bob.", "speaker": "bob"}).status_code == 200


def _host_port(server) -> tuple[str, int]:
    host, port = server["base"].removeprefix("http://").split(":")
    return host, int(port)


def test_streamed_flac_is_flac(server):
    """A streamed FLAC is a FLAC file from its first byte (it was raw PCM labelled audio/flac)."""
    import subprocess

    import av

    client = server["client"]
    text = "Thank you for calling. Please hold the line."
    with client.stream("POST", "/v1/tts", json={"text": text, "speaker": "alice", "format": "flac", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/flac"
        data = b"".join(r.iter_raw())
    path = server["root"] / "streamed.flac"
    path.write_bytes(data)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate", "-of", "csv=p=0",
                            str(path)], capture_output=True, text=True)
    assert probe.stdout.strip() == "flac,32000", probe.stderr
    with av.open(str(path)) as f:
        streamed = np.concatenate([frame.to_ndarray().reshape(-1) for frame in f.decode(audio=0)])
    whole, _ = sf.read(io.BytesIO(_tts(client, text, format="flac").content), dtype="int16")
    assert np.array_equal(streamed, whole)                                      # lossless: the same samples


def test_a_chunked_body_is_capped_and_a_keyless_one_is_not_read(server):
    from clonebench.testing.rawhttp import send_chunked

    host, port = _host_port(server)
    fifty_mb = (b"x" * 65536 for _ in range(800))
    r, sent = send_chunked(host, port, "/v1/tts", {"Content-Type": "application/json"}, fifty_mb)
    assert r.status == 401 and sent < 5_000_000                                 # refused before the body was read
    server["ids"][r.headers["x-request-id"]] = 401
    r, sent = send_chunked(host, port, "/v1/tts", {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
                           (b"x" * 65536 for _ in range(800)))
    assert r.status == 413 and sent < 5_000_000 and json.loads(r.body) == {"error": "request body over 65536 bytes"}
    server["ids"][r.headers["x-request-id"]] = 413
    body = json.dumps({"text": "A chunked request.", "speaker": "alice"}).encode()
    r, _ = send_chunked(host, port, "/v1/tts", {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
                        [body[:10], body[10:]])
    assert r.status == 200 and r.headers["content-type"] == "audio/wav"        # a small chunked body is fine


def test_a_client_that_leaves_a_whole_request_is_cancelled(server):
    """Not streamed: the client sends its request and goes; the server stops and logs 499."""
    from clonebench.testing.rawhttp import send_and_leave

    host, port = _host_port(server)
    text = "This caller will not wait. " * 5 + "Nobody hears this."            # 153 characters: found in the log
    body = json.dumps({"text": text, "speaker": "alice"}).encode()
    send_and_leave(host, port, "POST", "/v1/tts", {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
                   body, after_s=0.3)
    server["left_chars"] = len(text)
    streamed = "This caller hears one sentence. " * 4 + "Then hangs up."              # 142 characters
    body = json.dumps({"text": streamed, "speaker": "alice", "stream": True, "format": "pcm"}).encode()
    got = send_and_leave(host, port, "POST", "/v1/tts", {"Content-Type": "application/json",
                                                          "Authorization": f"Bearer {KEY}"}, body, read_bytes=2000)
    assert got.startswith(b"HTTP/1.1 200")
    server["left_streamed_chars"] = len(streamed)
    assert _tts(server["client"], "Still serving.").status_code == 200


def test_seeds_random_and_replayable_and_no_overflow(server):
    client = server["client"]
    text = "Press one for sales. Press two for support."
    a, b = _tts(client, text, seed=-1), _tts(client, text, seed=-1)
    assert a.status_code == b.status_code == 200 and a.headers["x-seed"] != b.headers["x-seed"]
    assert a.content != b.content
    again = _tts(client, text, seed=int(a.headers["x-seed"]))
    assert again.content == a.content                                           # a good take made again
    top = 2 ** 63 - 1                                                           # its second sentence wraps to seed 0
    with client.stream("POST", "/v1/tts", json={"text": text, "speaker": "alice", "seed": top, "stream": True,
                                                "format": "pcm"}) as r:
        streamed = b"".join(r.iter_raw())
    whole = _tts(client, text, seed=top, format="pcm")
    assert r.status_code == whole.status_code == 200 and r.headers["x-seed"] == str(top)
    assert streamed == whole.content and len(streamed) > 2 * 32000 * 0.5       # both sentences, not the first only


def test_speakers_say_who_can_be_served_and_a_given_prompt_makes_june_servable(server):
    client = server["client"]
    speakers = {s["speaker"]: s for s in client.get("/v1/speakers").json()}
    assert speakers["alice"]["servable"] and speakers["alice"]["why_not"] is None
    june = speakers["june"]
    assert june["status"] == "ready" and not june["servable"] and "'fr'" in june["why_not"]
    assert "clonebench prompt set june" in june["why_not"]
    assert not speakers["carol"]["servable"] and "insufficient" in speakers["carol"]["why_not"]
    health = httpx_get(server, "/healthz").json()
    assert (health["speakers"], health["servable"]) == (len(speakers), sum(s["servable"] for s in speakers.values()))
    r = client.post("/v1/tts", json={"text": "Bonjour.", "speaker": "june"})
    assert r.status_code == 409 and "clonebench prompt set june" in r.json()["error"]
    page = server["db"].parent / "reports" / "june.html"
    assert run_cli("report", "speaker", "june", "--db", str(server["db"]), check_json=False)[0] == 0
    assert "not servable:" in page.read_text() and "clonebench prompt set june" in page.read_text()
    # the operator gives June an English prompt: served on the next request, no restart
    code, doc, err = run_cli("prompt", "set", "june", "--audio", str(server["root"] / "refs" / "caller.wav"),
                             "--text", "Please hold the line.", "--lang", "en", "--by", "operator", "--db",
                             str(server["db"]), "--json")
    assert code == 0 and doc["lang"] == "en" and doc["set_by"] == "operator", err
    assert _tts(client, "Hello from June.", speaker="june").status_code == 200
    assert run_cli("report", "speaker", "june", "--db", str(server["db"]), check_json=False)[0] == 0
    assert "not servable" not in page.read_text() and "with the prompt operator gave (en" in page.read_text()
    code, _, err = run_cli("prompt", "set", "june", "--audio", str(server["root"] / "refs" / "caller.wav"),
                           "--text", "Привет", "--lang", "en", "--db", str(server["db"]), check_json=False)
    assert code == 2 and "script" in err and err.count("\n") == 1


def test_a_speaker_that_becomes_ready_is_served_on_the_next_request(server):
    client = server["client"]
    assert client.post("/v1/tts", json={"text": "Hello.", "speaker": "carol"}).status_code == 409
    _vet(server["db"], server["root"] / "audio", "carol", 60, seconds=60, folder="carol-more")
    r = client.post("/v1/tts", json={"text": "Hello from Carol.", "speaker": "carol"})   # no GET /v1/speakers first
    assert r.status_code == 200, r.text


def httpx_get(server, path: str, **kw):
    import httpx

    return httpx.get(f"{server['base']}{path}", **kw)


def test_docs_work_offline_and_the_schema_tells_the_truth(server):
    docs = httpx_get(server, "/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    for route in ("/v1/tts", "/v1/audio/speech", "/tts", "/v1/models", "/set_gpt_weights"):
        assert route in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text and "<script src" not in docs.text
    schema = httpx_get(server, "/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    tts = schema["paths"]["/v1/tts"]["post"]
    assert tts["security"] == [{"bearer": []}] and "audio/wav" in tts["responses"]["200"]["content"]
    assert "application/json" not in tts["responses"]["200"]["content"]
    assert tts["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "security" not in schema["paths"]["/healthz"]["get"]
    from browser import ARTIFACTS, browser

    d = browser()                                                               # as a person opens it, offline
    try:
        d.get(f"{server['base']}/docs")
        assert d.title == "clonebench voice service" and len(d.find_elements("css selector", "section[id]")) >= 8
        assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []   # nothing failed to load
        ARTIFACTS.mkdir(exist_ok=True)
        d.save_screenshot(str(ARTIFACTS / "serve-docs.png"))
    finally:
        d.quit()


def test_405_says_what_is_allowed(server):
    r = server["client"].get("/v1/tts")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and "error" in r.json()
    assert len(r.headers["x-request-id"]) == 16


def test_openai_client_streams_sentence_by_sentence_at_24_khz(server):
    from openai import OpenAI

    oai = OpenAI(base_url=f"{server['base']}/v1", api_key=KEY)
    text = "Thank you for calling. Please hold the line. Your call is important to us. We will be with you soon."
    times, chunks, t0 = [], [], time.perf_counter()
    with oai.audio.speech.with_streaming_response.create(model="tts-1", voice="alice", input=text,
                                                         response_format="pcm") as r:
        assert r.headers["x-sample-rate"] == "24000"
        for chunk in r.iter_bytes(4096):
            chunks.append(chunk)
            times.append(time.perf_counter() - t0)
    pcm = np.frombuffer(b"".join(chunks), "<i2")
    native = np.frombuffer(_tts(server["client"], text, format="pcm").content, "<i2")
    assert abs(len(pcm) / len(native) - 0.75) < 0.01                           # 24 kHz: 3/4 of the 32 kHz samples
    assert times[0] < times[-1] - 0.05                                          # first audio long before the last
    events = []
    with oai.audio.speech.with_streaming_response.create(model="tts-1", voice="alice", input=text, response_format="pcm",
                                                         stream_format="sse") as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert [e["type"] for e in events[-1:]] == ["speech.audio.done"] and len(events) >= 5
    import base64

    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == b"".join(chunks)
    assert [m.id for m in oai.models.list().data] == ["clonebench"]


def test_openai_errors_reach_the_client_and_long_input_is_split(server):
    from openai import NotFoundError, OpenAI, UnprocessableEntityError

    oai = OpenAI(base_url=f"{server['base']}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(NotFoundError, match="unknown speaker 'nova'"):
        oai.audio.speech.create(model="tts-1", voice="nova", input="Hello.")
    with pytest.raises(UnprocessableEntityError, match="instructions are not supported"):
        oai.audio.speech.create(model="tts-1", voice="alice", input="Hello.", instructions="Speak cheerfully.")
    r = server["client"].post("/v1/audio/speech", json={"voice": "alice", "input": "x" * 4097})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_long" and "4096" in r.json()["error"]["message"]
    long_sentence = " ".join(["please stay on the line"] * 12) + "."             # 287 characters, no comma
    wav = oai.audio.speech.create(model="tts-1", voice="alice", input=long_sentence, response_format="wav")
    x, sr = sf.read(io.BytesIO(wav.content))
    assert sr == 24000 and len(x) > 0


def test_api_v2_clients_work_unchanged(server):
    """GPT-SoVITS api_v2's documented GET and POST calls, with a speaker or a file under --ref-dir."""
    import httpx

    base, headers = server["base"], {"Authorization": f"Bearer {KEY}"}
    r = httpx.get(f"{base}/tts", params={"text": "Thank you for calling.", "text_lang": "en", "ref_audio_path": "alice",
                                         "prompt_lang": "en", "text_split_method": "cut5", "batch_size": 1,
                                         "media_type": "wav", "streaming_mode": "false"}, headers=headers, timeout=300)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    x, sr = sf.read(io.BytesIO(r.content))
    assert sr == 32000 and len(x) > 0
    body = {"text": "Please hold the line. We will be right with you.", "text_lang": "en", "ref_audio_path": "caller.wav",
            "prompt_text": "Please hold the line.", "prompt_lang": "en", "media_type": "wav", "streaming_mode": True,
            "seed": 7, "top_k": 15, "speed_factor": 1.0, "repetition_penalty": 1.35}
    with httpx.stream("POST", f"{base}/tts", json=body, headers=headers, timeout=300) as r:
        data = b"".join(r.iter_raw())
    assert r.status_code == 200 and data[:4] == b"RIFF" and len(data) > 44 + 32000
    raw = httpx.post(f"{base}/tts", json={**body, "media_type": "raw", "streaming_mode": False}, headers=headers, timeout=300)
    assert raw.content == data[44:]                                             # same seed: same audio
    for outside in ("../keys.txt", "/etc/passwd"):
        r = httpx.post(f"{base}/tts", json={**body, "ref_audio_path": outside}, headers=headers, timeout=60)
        assert r.status_code == 403 and "outside" in r.json()["error"]
    r = httpx.get(f"{base}/tts", params={"text": "Hi.", "text_lang": "en"}, headers=headers)
    assert r.status_code == 422 and "ref_audio_path is required" in r.json()["error"]


def test_japanese_korean_and_cantonese_are_spoken_through_both_apis(server):
    """Japanese text (with an English word) to an enrolled voice: the native API with `ja`, and an
    api_v2 client's `all_ja` and `ja`; Korean and Cantonese too; a language no front end reads is
    a 422."""
    import httpx

    client, base, headers = server["client"], server["base"], {"Authorization": f"Bearer {KEY}"}
    r = _tts(client, "お電話ありがとうございます。AIが担当します。", lang="ja")
    assert r.status_code == 200, r.text
    x, sr = sf.read(io.BytesIO(r.content))
    assert sr == 32000 and len(x) > 0.5 * sr and np.abs(x).max() > 0
    for code in ("all_ja", "ja"):
        r = httpx.get(f"{base}/tts", params={"text": "少々お待ちください。", "text_lang": code, "ref_audio_path": "alice",
                                             "prompt_lang": "en", "media_type": "wav"}, headers=headers, timeout=300)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", (code, r.text)
    r = _tts(client, "안녕하세요. 잠시만 기다려 주세요.", lang="ko")
    assert r.status_code == 200, r.text
    r = _tts(client, "你食咗飯未呀？我哋10月1號去旅行。", lang="yue")
    assert r.status_code == 200, r.text
    x, sr = sf.read(io.BytesIO(r.content))
    assert sr == 32000 and len(x) > 0.5 * sr and np.abs(x).max() > 0
    r = httpx.get(f"{base}/tts", params={"text": "唔該晒！", "text_lang": "all_yue", "ref_audio_path": "alice",
                                         "prompt_lang": "en", "media_type": "wav"}, headers=headers, timeout=300)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", r.text
    r = _tts(client, "Bonjour à tous.", lang="fr")
    assert r.status_code == 422 and "fr" in r.json()["error"]


def test_api_v2_weights_swap_atomically(server):
    import httpx

    base, headers = server["base"], {"Authorization": f"Bearer {KEY}"}
    before = httpx_get(server, "/healthz").json()
    assert httpx.get(f"{base}/set_gpt_weights", params={"weights_path": "g.ckpt"}).status_code == 401
    r = httpx.get(f"{base}/set_sovits_weights", params={"weights_path": "broken.pth"}, headers=headers, timeout=300)
    assert r.status_code == 422 and httpx_get(server, "/healthz").json()["sovits_sha256"] == before["sovits_sha256"]
    r = httpx.get(f"{base}/set_gpt_weights", params={"weights_path": "../model/gpt.ckpt"}, headers=headers)
    assert r.status_code == 403
    text = "Thank you for calling. Please hold the line. Your call is important to us."
    results = {}
    slow = threading.Thread(target=lambda: results.update(inflight=_tts(server["client"], text, seed=3)))
    slow.start()
    time.sleep(0.2)
    gpt_name = Path(server["other"]["gpt"]).name
    r = httpx.get(f"{base}/set_gpt_weights", params={"weights_path": gpt_name}, headers=headers, timeout=300)
    slow.join()
    assert r.status_code == 200 and r.json()["message"] == "success"
    assert results["inflight"].status_code == 200                                # not dropped by the swap
    after = httpx_get(server, "/healthz").json()
    assert after["gpt_sha256"] != before["gpt_sha256"] and after["sovits_sha256"] == before["sovits_sha256"]
    assert _tts(server["client"], "Hello after the swap.").status_code == 200
    back = httpx.get(f"{base}/set_gpt_weights", params={"weights_path": f"../model/{Path(server['model']['gpt']).name}"},
                     headers=headers)
    assert back.status_code == 403                                              # only files under --weights-dir


def test_the_log_has_a_row_for_every_synthesis(server):
    """Last: it stops the server, which owns the log file while it runs."""
    import duckdb

    client = server["client"]
    bad = client.post("/v1/tts", json={"text": "Hello.", "speaker": "nobody"})
    hostile = client.post("/v1/tts", json={"text": "Hello.", "speaker": XSS})
    good = _tts(client, "One more for the log.")
    server["proc"].terminate()
    server["proc"].wait(timeout=30)
    log_file = server["db"].parent / "serve-log.duckdb"
    with duckdb.connect(str(log_file), read_only=True) as con:
        rows = {r[0]: r for r in con.execute(
            "SELECT request_id, status, speaker, chars, audio_s, batch_size, error, gpt_sha256 FROM syntheses").fetchall()}
        statuses = dict(con.execute("SELECT status, count(*) FROM syntheses GROUP BY ALL").fetchall())
        left = con.execute("SELECT status, error, streamed FROM syntheses WHERE chars IN (?, ?) ORDER BY chars DESC",
                           [server["left_chars"], server["left_streamed_chars"]]).fetchall()
    ok = rows[good.headers["x-request-id"]]
    assert ok[1] == 200 and ok[2] == "alice" and ok[3] == len("One more for the log.") and ok[4] > 0 and ok[5] >= 1
    assert len(ok[7]) == 64
    assert statuses[200] >= 20 and statuses[404] >= 2 and statuses[413] >= 1 and statuses[422] >= 3
    assert bad.status_code == hostile.status_code == 404
    # refusals the handlers never saw (401, chunked 413, validation 422) are rows too, with their status
    assert {rid: rows[rid][1] for rid in server["ids"]} == server["ids"] and 401 in server["ids"].values()
    assert left == [(499, "client disconnected", False), (499, "client disconnected", True)]   # the callers who left
    output = server["proc"].stdout.read()
    assert "Future exception was never retrieved" not in output and "serving 1 of 3 speakers" in output
    assert KEY not in log_file.read_bytes().decode("latin-1")                    # keys never logged
    # the report of the log: every figure from the rows, hostile text escaped, clean in Chromium
    from browser import check_in_browser

    code, _, err = run_cli("report", "serve", "--db", str(server["db"]), check_json=False)
    assert code == 0, err
    page = server["db"].parent / "reports" / "serve.html"
    html = page.read_text()
    assert f"{statuses[200]} of {sum(statuses.values())} requests served" in html
    assert XSS not in html and "&lt;script&gt;" in html and html.count("<figure>") == 6
    check_in_browser(page, "serve-report.png")


def test_options_refuse_an_open_server_without_keys(tmp_path, monkeypatch):
    from clonebench.core.errors import UserError
    from clonebench.core.keys import hash_key
    from clonebench.serve.options import ServeOptions

    for name in ("g.ckpt", "s.pth", "db.duckdb"):
        (tmp_path / name).write_bytes(b"x")
    from clonebench.model.spec import ModelSpec

    files = {"model": ModelSpec(tmp_path / "g.ckpt", tmp_path / "s.pth"), "db": tmp_path / "db.duckdb"}
    monkeypatch.delenv("CLONEBENCH_API_KEYS", raising=False)
    with pytest.raises(UserError, match="without API keys"):
        ServeOptions(**files, host="0.0.0.0")
    assert ServeOptions(**files, host="0.0.0.0", insecure=True).key_hashes == frozenset()
    assert ServeOptions(**files, host="::1").host == "::1"                      # loopback needs no key
    monkeypatch.setenv("CLONEBENCH_API_KEYS", "k1, k2")
    opts = ServeOptions(**files, host="0.0.0.0")
    assert opts.key_hashes == {hash_key("k1"), hash_key("k2")} and "k1" not in repr(opts)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(UserError, match="no key"):
        ServeOptions(**files, api_keys=tmp_path / "empty.txt")
    with pytest.raises(UserError, match="max-batch"):
        ServeOptions(**files, max_batch=0)


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory):
    """A real `tiny` Synthesizer (random weights, made here) and a prepared voice."""
    import torch

    from clonebench.instruments.references import PromptChoice
    from clonebench.model import checkpoint
    from clonebench.model.config import preset
    from clonebench.model.gpt import Text2Semantic
    from clonebench.model.sovits import SoVITS
    from clonebench.model.spec import ModelSpec
    from clonebench.model.synthesize import Synthesizer

    root = tmp_path_factory.mktemp("tiny-voice")
    torch.manual_seed(0)
    s_config, g_config = preset("tiny")
    checkpoint.save_sovits(root / "s.pth", SoVITS(s_config), s_config, epoch=1, step=1)
    checkpoint.save_gpt(root / "g.ckpt", Text2Semantic(g_config), g_config, epoch=1)
    synth = Synthesizer(ModelSpec(root / "g.ckpt", root / "s.pth"), keep_content=False)
    _, audio = corpus.take_seconds(corpus.prompts("en"), 5)
    ref = synth.reference(PromptChoice(corpus.join(audio, gap_s=0.2), None, "Please hold the line.", "en", "test"))
    assert synth.content is None                      # released once the voice is prepared
    return synth, ref


def _ticket(synth, ref, request_id: str, sentences: list[str], seed: int):
    """A request of these sentences as admission queues them: each prepared once, sentence i seeded seed + i."""
    from clonebench.model.synthesize import Utterance
    from clonebench.serve.worker import Ticket

    prepared = [synth.prepare(text, "en")[0] for text in sentences]
    return Ticket(request_id, tuple(Utterance(p, ref, seed=seed + i) for i, p in enumerate(prepared)))


def _run_worker(worker, requests) -> list[list]:
    for r in requests:
        worker.submit(r)
    worker.start()
    try:
        return [[f.result(timeout=300) for f in r.futures] for r in requests]
    finally:
        worker.stop()


def test_a_batch_grows_only_while_its_kv_cache_fits_the_budget(tiny_voice):
    """The worker with a real `tiny` model: a budget of two rows at their token caps gives
    batches of at most two, and every sentence is still said."""
    from clonebench.model.synthesize import Utterance
    from clonebench.serve.worker import Worker

    synth, ref = tiny_voice
    text = "Thank you for calling."
    (sentence,) = synth.prepare(text, "en")
    positions = Utterance(sentence, ref).positions
    assert positions > len(ref.phones) + len(ref.tokens)
    sizes: list[int] = []
    worker = Worker(synth, threading.Lock(), max_batch=8, window_s=0.5, capacity=64, on_batch=sizes.append,
                    memory_budget=synth.gpt.kv_cache_bytes(2, positions))
    waves = _run_worker(worker, [_ticket(synth, ref, f"r{k}", [text], seed=k) for k in range(6)])
    assert all(len(w[0]) > 0 for w in waves)
    assert sum(sizes) == 6 and max(sizes) == 2


def test_continuous_batching_serves_the_audio_each_sentence_gets_alone(tiny_voice):
    """Sentences join the running decode as rows free up; every sentence's audio is what
    `say_sentences` makes of it alone, a request's sentences come back in order, and rows
    were shared."""
    from clonebench.serve.worker import ContinuousWorker

    synth, ref = tiny_voice
    texts = [["Good morning.", "Please hold."], ["Your call matters to us."], ["One moment.", "Thank you.", "Bye."],
             ["Press one for sales."], ["Press two for support."]]
    requests = [_ticket(synth, ref, f"r{k}", t, seed=10 * k) for k, t in enumerate(texts)]
    occupancy: list[int] = []
    worker = ContinuousWorker(synth, threading.Lock(), max_batch=3, window_s=0.0, capacity=64,
                              on_batch=occupancy.append, memory_budget=64 * 2 ** 20)
    waves = _run_worker(worker, requests)
    for req, got in zip(requests, waves):
        for i, wav in enumerate(got):
            alone = synth.say_sentences([req.sentences[i]])[0]
            assert np.array_equal(wav, alone), (req.request_id, i)
    assert max(occupancy) > 1 and len(occupancy) == sum(len(t) for t in texts)
