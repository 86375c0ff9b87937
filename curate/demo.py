"""The built-in demo's vetting: build the demo corpus (`testing.demo_corpus`), then vet each speaker."""

from __future__ import annotations

import logging
from pathlib import Path

from testing.demo_corpus import build_demo

log = logging.getLogger(__name__)


def run_demo(root: Path) -> list[dict]:
    from .vet import VetOptions, vet

    root = Path(root)
    speakers = build_demo(root)
    results = []
    for name, info in speakers.items():
        log.info("vetting demo speaker %s", name)
        opts = VetOptions(speaker=name, db=root / "clonebench.duckdb", lang=info["lang"], transcripts=info["transcripts"],
                          inputs=[info["dir"]])
        results.append(vet(opts))
    return results
