"""`clonebench serve`: the enrolled voices over HTTP (FastAPI + uvicorn).

- `options.py`   ServeOptions, validated before anything loads;
- `protocol.py`  what a client sees: the request bodies, the error body, media types, the WAV header;
- `service.py`   the `Service` (model, voices, worker, request log, metrics) and its request, a `SpeechJob`,
                 admitted once: text checked and prepared by the front end, voice looked up, queued;
- `voices.py`    the timbre library from the store, prepared prompts in an LRU cache;
- `worker.py`    the one inference thread that owns the model and batches sentences across requests;
- `metrics.py`   the Prometheus metrics;
- `app.py`       the HTTP routes (thin: parse, ask the Service, map errors), `create_app` and `run`.
"""
