"""Names sync_pipeline validates itself (Dagster accepts any partition key): connection ids, variants, partition keys."""

from __future__ import annotations

import re

from sync_pipeline.vocabulary import BASE_VARIANT

SEPARATOR = "::"
CONNECTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._@+=-]{1,255}$")
VARIANT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class InvalidPartitionKey(ValueError):
    """A partition key, connection id or variant name outside what sync_pipeline accepts."""


def validate_connection_id(connection_id: str) -> str:
    if not isinstance(connection_id, str) or not CONNECTION_ID_PATTERN.match(connection_id):
        raise InvalidPartitionKey(
            f"connection id {connection_id!r} must be 1 to 255 characters of letters, digits and . _ @ + = -"
        )
    return connection_id


def validate_variant(variant: str, *, allow_base: bool = True) -> str:
    if not isinstance(variant, str) or not VARIANT_PATTERN.match(variant):
        raise InvalidPartitionKey(f"variant {variant!r} must be 1 to 255 characters of letters, digits, _ and -")
    if not allow_base and variant.lower() == BASE_VARIANT:
        raise InvalidPartitionKey(f"variant {variant!r} is reserved for the base variant")
    if allow_base and variant.lower() == BASE_VARIANT and variant != BASE_VARIANT:
        raise InvalidPartitionKey(f"variant {variant!r}: the base variant is spelled 'base'")
    return variant


def make_partition_key(connection_id: str, variant: str = BASE_VARIANT) -> str:
    return f"{validate_connection_id(connection_id)}{SEPARATOR}{validate_variant(variant)}"


def parse_partition_key(key: str) -> tuple[str, str]:
    """`"acme::inbox"` -> `("acme", "inbox")`, or InvalidPartitionKey naming what is wrong."""
    connection_id, separator, variant = key.partition(SEPARATOR)
    if not separator:
        raise InvalidPartitionKey(f"partition key {key!r} must look like '<connection_id>::<variant>'")
    return validate_connection_id(connection_id), validate_variant(variant)
