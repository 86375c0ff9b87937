"""The GPT-SoVITS v2 model family in our own code.

- `text/`: text front end (normalization, G2P, v2's 732-symbol table, sentence splitting)
- `features.py`: content (SSL) features and BERT features behind one interface each
- `sovits.py`: SoVITS (content codes + phones + reference -> 32 kHz waveform)
- `gpt.py`: Text2Semantic decoder (phones -> semantic tokens) with a KV cache
- `checkpoint.py`: GPT-SoVITS v2 `.ckpt`/`.pth` files and our native checkpoint, loaded safely
- `synthesize.py`: the `Synthesizer` that loads once and speaks many times

torch is imported by these modules; the CLI imports them lazily.
"""
