"""Secrets at rest: JSON sealed with Fernet under SYNC_PIPELINE_ENCRYPTION_KEY (plain JSON when no key is set)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

ENCRYPTED_PREFIX = "fernet:"


class CredentialsError(RuntimeError):
    """Stored credentials that cannot be read with the configured encryption key."""


class Sealer:
    """Seals and opens JSON secrets; the key comes from the argument, else SYNC_PIPELINE_ENCRYPTION_KEY."""

    def __init__(self, encryption_key: str | None = None) -> None:
        key = encryption_key if encryption_key is not None else os.environ.get("SYNC_PIPELINE_ENCRYPTION_KEY")
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) if key else None

    def seal(self, secret: dict[str, Any]) -> str:
        text = json.dumps(secret)
        if self._fernet is None:
            return text
        return ENCRYPTED_PREFIX + self._fernet.encrypt(text.encode()).decode()

    def open(self, stored: str) -> dict[str, Any]:
        if not stored.startswith(ENCRYPTED_PREFIX):
            return json.loads(stored)
        if self._fernet is None:
            raise CredentialsError("credentials are encrypted: set SYNC_PIPELINE_ENCRYPTION_KEY to read them")
        try:
            return json.loads(self._fernet.decrypt(stored[len(ENCRYPTED_PREFIX) :].encode()))
        except InvalidToken:
            raise CredentialsError("credentials cannot be decrypted with SYNC_PIPELINE_ENCRYPTION_KEY") from None
