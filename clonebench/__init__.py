"""clonebench: vet recordings, train GPT+SoVITS voices, evaluate checkpoints, report."""

__version__ = "0.1.0"
