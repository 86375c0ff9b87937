"""API keys and the network rule every clonebench server (`serve`, `review`) applies: on a
loopback address anything goes; elsewhere keys are required unless the operator says
`--insecure`. Only SHA-256 digests of keys are kept in memory.

A key file has one key a line (`#` comments); a line `NAME KEY` gives the key a name, which
`review` records as the reviewer."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from pathlib import Path

from .errors import UserError

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def read_api_keys(path: Path | None, env: str | None) -> dict[str, str]:
    """{digest: name} of every key in FILE and in $CLONEBENCH_API_KEYS (comma-separated). A key
    without a name is called `key-` + the first 8 hex digits of its digest."""
    lines: list[str] = []
    if path is not None:
        try:
            lines += [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()
                      if line.strip() and not line.strip().startswith("#")]
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--api-keys {path}: cannot read ({type(e).__name__})") from None
        if not lines:
            raise UserError(f"--api-keys {path}: no key in the file")
    lines += [k.strip() for k in (env or "").split(",") if k.strip()]
    keys: dict[str, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) > 2:
            raise UserError(f"--api-keys: a line is KEY or NAME KEY, not {len(parts)} words")
        digest = hash_key(parts[-1])
        keys[digest] = parts[0] if len(parts) == 2 else f"key-{digest[:8]}"
    return keys


def key_owner(keys: dict[str, str], presented: str) -> str | None:
    """The name of the key presented, compared in constant time; None when it is no key."""
    digest = hash_key(presented) if presented.strip() else ""
    owner = None
    for h, name in keys.items():
        if hmac.compare_digest(digest, h):
            owner = name
    return owner


def bearer(authorization: str) -> str:
    """The key in an `Authorization: Bearer KEY` header ('' when there is none)."""
    return authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, keys: dict[str, str], insecure: bool, what: str) -> None:
    """Refuse to listen beyond this machine without keys, unless told `--insecure`."""
    if not keys and not insecure and not is_loopback(host):
        raise UserError(f"--host {host} would {what} to the network without API keys: "
                        "give --api-keys FILE (or CLONEBENCH_API_KEYS), or --insecure")
