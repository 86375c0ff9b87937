"""clonebench: vet recordings, train GPT+SoVITS voices, evaluate checkpoints, report."""

import os

# MKL's conditional numerical reproducibility, read when MKL starts (so before torch is imported).
# Without it, on AVX-512 CPUs (seen on Sapphire Rapids) MKL's kernels sum in an order that
# depends on memory alignment and threads: two training runs with the same seed drift apart in
# the last bits from the third step, and a resumed run no longer matches an unbroken one. With
# AUTO,STRICT the code path is still the CPU's best; a tiny training run timed the same (20.5 s
# against 21.4 s without).
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
