"""Is requirements.lock made from the dependencies pyproject.toml declares now?

The lock's first line records a digest of pyproject.toml's dependency tables (requires-python,
dependencies, optional-dependencies). `make lock` writes it; `make setup` and CI compare it, so
an edit to pyproject.toml that was not followed by `make lock` fails at once with one line.
Standard library only: it runs before the venv has anything in it.

    python3 scripts/check_lock.py            # exit 1 with one line when they disagree
    python3 scripts/check_lock.py --stamp    # after `uv pip compile`: record the digest
"""

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
MARK = "# pyproject-dependencies-sha256: "


def dependency_digest(pyproject: Path) -> str:
    project = tomllib.loads(pyproject.read_text())["project"]
    tables = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {k: sorted(v) for k, v in project.get("optional-dependencies", {}).items()},
    }
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(MARK):
            return line[len(MARK):].strip()
    return None


def main(argv: list[str]) -> int:
    digest = dependency_digest(ROOT / "pyproject.toml")
    if not LOCK.exists():
        print("requirements.lock is missing: run `make lock`", file=sys.stderr)
        return 1
    if argv[1:] == ["--stamp"]:
        lines = [line for line in LOCK.read_text().splitlines() if not line.startswith(MARK)]
        LOCK.write_text("\n".join([MARK + digest, *lines]) + "\n")
        return 0
    if recorded_digest(LOCK) != digest:
        print("requirements.lock does not match pyproject.toml's dependencies: run `make lock` "
              "and commit both", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
