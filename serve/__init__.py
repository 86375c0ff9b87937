"""`clonebench serve`: the enrolled voices over HTTP (FastAPI + uvicorn), three APIs over one model.

- `options.py`     ServeOptions, validated before anything loads; `inside()`, the one check on client-named files;
- `protocol.py`    what a client sees: the request bodies of the three APIs, the two error bodies, media types;
- `gate.py`        the ASGI middleware every request passes first: id, key, body limit, refusals' log rows;
- `service.py`     the `Service` (model, voices, worker, request log, metrics, model swap) and its request, a
                   `SpeechJob`, admitted once: text checked and prepared by the front end, voice looked up, queued;
- `encoding.py`    audio whole or as a stream that is a valid file from its first byte;
- `voices.py`      every speaker, servable or why not; prepared prompts in an LRU cache;
- `worker.py`      the one inference thread that owns the model and batches sentences across requests;
- `metrics.py`     the Prometheus metrics;
- `respond.py`     what every synthesis route does after parsing: the job, the Service, the answer;
- `app.py`         clonebench's routes, error handlers, the OpenAPI schema, `create_app` and `run`;
- `openai_api.py`  OpenAI's speech API; `api_v2.py` GPT-SoVITS api_v2's routes; `docs.py` the offline /docs page.
"""
