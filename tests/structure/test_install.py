"""What `pip install` puts in an environment, and the lock that `make setup` installs from."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from packaging.requirements import Requirement

DATA_FILES = ["clonebench/model/text/symbols_v2.txt", "clonebench/curate/rules.toml",
              "clonebench/instruments/weights/scenes-v2.npz", "clonebench/evaluate/sets/en.tsv",
              "clonebench/reports/templates/speaker.html.j2", "clonebench/reports/static/report.css"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # a copy of the tree as git sees it (ignored files left out), so the build's own folders never land in the checkout
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file():
            (build / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, build / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(build)], check=True, capture_output=True)
    return next(out.glob("clonebench-*.whl"))


def test_the_wheel_installs_one_top_level_name_with_its_data(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    before = set(_site_packages(python).iterdir())
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "pip", "install", "-q", "--no-deps", "--offline", "--python", str(python), str(wheel)],
                   check=True, capture_output=True)
    site = _site_packages(python)
    added = {p.name for p in set(site.iterdir()) - before if not p.name.endswith(".dist-info")}
    assert added == {"clonebench"}
    for name in DATA_FILES:
        assert (site / name).is_file(), name
    assert (venv / "bin" / "clonebench").is_file()
    with zipfile.ZipFile(wheel) as zf:
        tops = {n.split("/")[0] for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"clonebench"}


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")) and "==" in line:
            name, version = line.split(" ")[0].split("==")
            pins[name.lower().replace("_", "-").replace(".", "-")] = version
    return pins


def test_the_lock_pins_every_requirement_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    pins = _locked()
    for spec in map(Requirement, wanted):
        name = spec.name.lower().replace("_", "-").replace(".", "-")
        assert name in pins, f"{spec.name} is not in requirements.lock"
        assert spec.specifier.contains(pins[name], prereleases=True), f"{spec} but the lock has {pins[name]}"
    assert pins["torch"] == "2.11.0" and pins["torchaudio"] == "2.11.0"   # 2.11.1 does not load beside torch 2.11.0
    hashed = (ROOT / "requirements.lock").read_text().count("--hash=sha256:")
    assert hashed >= len(pins)


def test_a_pyproject_edit_without_a_new_lock_fails_setup_with_one_line(tmp_path):
    for name in ("pyproject.toml", "requirements.lock", "scripts/check_lock.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    check = [sys.executable, str(tmp_path / "scripts" / "check_lock.py")]
    assert subprocess.run(check, capture_output=True).returncode == 0
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"jinja2>=3.1",', '"jinja2>=3.1",\n  "six",'))
    proc = subprocess.run(check, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "make lock" in proc.stderr
    # a comment or the build settings may change without a new lock
    pyproject.write_text((ROOT / "pyproject.toml").read_text() + "\n# a note\n")
    assert subprocess.run(check, capture_output=True).returncode == 0
