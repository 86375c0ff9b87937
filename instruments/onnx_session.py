"""ONNX Runtime sessions sized to the machine (the screens run one after another, not in parallel)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_threads() -> int:
    return int(os.environ.get("CLONEBENCH_THREADS", min(4, os.cpu_count() or 1)))


def session_options():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cpu_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def open_session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
