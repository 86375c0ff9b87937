"""What `clonebench review` takes; an unsafe or impossible setting fails here, in one line."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from clonebench.core.errors import UserError
from clonebench.core.keys import check_exposure, read_api_keys


@dataclass(frozen=True)
class ReviewOptions:
    db: Path
    host: str = "127.0.0.1"
    port: int = 9890
    reviewer: str | None = None        # who the acts are recorded as when no key names them; None: the login name
    api_keys: Path | None = None
    insecure: bool = False
    store_wait_s: float = 2.0          # how long a request waits for a store another command holds (then 503)
    max_body_bytes: int = 65536
    keys: dict[str, str] = field(default_factory=dict, repr=False)   # key digest -> reviewer name

    def __post_init__(self) -> None:
        if not Path(self.db).is_file():
            raise UserError(f"--db {self.db}: no such file (run `clonebench vet` first)")
        if not 0 < self.port < 65536:
            raise UserError(f"--port {self.port}: not a port number")
        name = (self.reviewer if self.reviewer is not None else _login_name()).strip()
        if not name or len(name) > 64 or any(ch.isspace() and ch != " " for ch in name):
            raise UserError("--reviewer: a name of 1-64 characters on one line")
        object.__setattr__(self, "reviewer", name)
        keys = read_api_keys(self.api_keys, os.environ.get("CLONEBENCH_API_KEYS"))
        object.__setattr__(self, "keys", keys)
        check_exposure(self.host, keys, self.insecure, "let anyone change verdicts")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"
