"""Secrets at rest: JSON sealed with the keys of SYNC_PIPELINE_ENCRYPTION_KEY (plain JSON when no key is set).

The keys themselves (one or several, rotation) are `_encryption.Keyring`'s.
"""

from __future__ import annotations

import json
from typing import Any

from sync_pipeline.json_input import loads_stored
from sync_pipeline.store._encryption import SEALED_PREFIX, CredentialsError, Keyring

ENCRYPTED_PREFIX = SEALED_PREFIX

__all__ = ["ENCRYPTED_PREFIX", "CredentialsError", "Sealer"]


class Sealer:
    """Seals and opens JSON secrets; the keys come from the argument, else SYNC_PIPELINE_ENCRYPTION_KEY."""

    def __init__(self, encryption_key: str | None = None) -> None:
        self.keys = Keyring.from_setting(encryption_key)

    def seal(self, secret: dict[str, Any]) -> str:
        return self.keys.seal(json.dumps(secret))

    def open(self, stored: str) -> dict[str, Any]:
        """The secret, or CredentialsError naming the key problem."""
        return loads_stored(self.keys.open(stored))
