"""The GPT-SoVITS v2 model family in our own code.

- `text/`: text front end (normalization, G2P, v2's 732-symbol table, sentence splitting)
- `features.py`: content (SSL) features and BERT features behind one interface each
- `sovits.py`: SoVITS (content codes + phones + reference -> 32 kHz waveform)
- `gpt.py`: Text2Semantic decoder (phones -> semantic tokens): the network, `prefill`/`step`, and
  `generate`, the front door to the decode loops
- `decode/`: the decode loops (eager, static with CUDA graphs, continuous batching), sampling and
  the KV caches
- `spec.py`: `ModelSpec`, which GPT + SoVITS pair to load and how
- `train.py`: training s2 then s1 (`Trainer`)
- `checkpoint.py`: GPT-SoVITS v2 `.ckpt`/`.pth` files and our native checkpoint, loaded safely
- `synthesize.py`: the `Synthesizer` that loads once and speaks many times

torch is imported by these modules; the CLI imports them lazily.
"""
