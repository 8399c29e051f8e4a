"""Access keys. For now one root credential per deployment, kept in the data folder.

Generated on first run (or taken from HUIMIN_ROOT_ACCESS_KEY / HUIMIN_ROOT_SECRET_KEY) and
stored with mode 0600; later issues add tenants and per-tenant keys behind the same lookup.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class Credential:
    access_key: str
    secret_key: str


def generate() -> Credential:
    return Credential(
        access_key="HM" + "".join(secrets.choice(_ALPHABET) for _ in range(18)),
        secret_key=secrets.token_urlsafe(30),
    )


def load_or_create_root(
    data_dir: Path, access_key: str | None, secret_key: str | None
) -> Credential:
    """The root credential: from the arguments when given, else from DATA_DIR, else new."""
    path = data_dir / "root-credentials.json"
    if access_key and secret_key:
        return Credential(access_key, secret_key)
    if path.exists():
        doc = json.loads(path.read_text())
        return Credential(doc["access_key"], doc["secret_key"])
    cred = generate()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"access_key": cred.access_key, "secret_key": cred.secret_key}, f)
    return cred


class CredentialStore:
    def __init__(self, credentials: list[Credential]) -> None:
        self._by_key = {c.access_key: c for c in credentials}

    def secret_for(self, access_key: str) -> str | None:
        cred = self._by_key.get(access_key)
        return cred.secret_key if cred else None
