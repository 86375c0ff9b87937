"""`clonebench serve`: the enrolled voices over HTTP (FastAPI + uvicorn).

- `options.py`  ServeOptions, validated before anything loads;
- `voices.py`   the timbre library from the store, prepared prompts in an LRU cache;
- `worker.py`   the one inference thread that owns the model and batches sentences across requests;
- `app.py`      the HTTP API: /v1/tts, the OpenAI-compatible /v1/audio/speech, /v1/speakers,
                /healthz, /metrics, API keys, limits, the request log.
"""
