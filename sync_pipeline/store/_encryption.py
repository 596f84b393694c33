"""Stored secrets (a connection's credentials and connection_config) encrypted with SYNC_PIPELINE_ENCRYPTION_KEY.

The variable holds one key or several, comma-separated: the first encrypts, every one decrypts (Fernet's
MultiFernet), so a key is rotated by putting the new one first, running `sync-pipeline rotate-key`, and
then dropping the old one. Each key is any non-empty text; the Fernet key is its SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENCRYPTION_KEY_VARIABLE = "SYNC_PIPELINE_ENCRYPTION_KEY"
SEALED_PREFIX = "fernet:"


class EncryptionKeyError(RuntimeError):
    """SYNC_PIPELINE_ENCRYPTION_KEY is malformed, missing while secrets are encrypted, or not their key."""


class CredentialsError(RuntimeError):
    """Stored credentials that cannot be read with the configured encryption key."""


class Keyring:
    """The configured keys: `seal` encrypts with the first, `open` decrypts with any."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.size = len(keys)
        self._fernet = MultiFernet([_fernet(key) for key in keys]) if keys else None

    @classmethod
    def from_setting(cls, value: str | None = None) -> "Keyring":
        """Keys from `value`, else from the environment: comma-separated, blanks around them ignored."""
        text = value if value is not None else os.environ.get(ENCRYPTION_KEY_VARIABLE, "")
        if not text.strip():
            return cls([])
        keys = [part.strip() for part in text.split(",")]
        if not all(keys):
            raise EncryptionKeyError(
                f"{ENCRYPTION_KEY_VARIABLE} holds an empty key: list keys separated by single commas, "
                "the one to encrypt with first"
            )
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, text: str) -> str:
        """`text` encrypted with the first key, or as it is when no key is configured."""
        if self._fernet is None:
            return text
        return SEALED_PREFIX + self._fernet.encrypt(text.encode()).decode()

    def open(self, stored: str) -> str:
        """The text of a stored value (sealed or not), or CredentialsError naming the key problem."""
        if not is_sealed(stored):
            return stored
        if self._fernet is None:
            raise CredentialsError(
                f"the stored secrets are encrypted: set {ENCRYPTION_KEY_VARIABLE} to the key they were encrypted with"
            )
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise CredentialsError(
                f"the stored secrets were encrypted with a key that is not in {ENCRYPTION_KEY_VARIABLE} "
                f"({self.size} key{'s' if self.size != 1 else ''} configured): add the old key after the new one"
            ) from None

    def reseal(self, stored: str) -> str:
        """A stored value encrypted again with the first key (plain text gets encrypted); CredentialsError if unreadable."""
        if self._fernet is None:
            raise EncryptionKeyError(f"{ENCRYPTION_KEY_VARIABLE} is not set: there is no key to encrypt with")
        if not is_sealed(stored):
            return self.seal(stored)
        try:
            return SEALED_PREFIX + self._fernet.rotate(stored[len(SEALED_PREFIX) :].encode()).decode()
        except InvalidToken:
            self.open(stored)  # raises the CredentialsError that says why
            raise


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)


def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))
