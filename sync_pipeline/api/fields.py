"""What the request and response models share: the names sync_pipeline validates itself, as pydantic types."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from sync_pipeline.keys import CONNECTION_ID_PATTERN, VARIANT_PATTERN, validate_connection_id, validate_variant

# The JSON schemas below say in openapi.json exactly what the validators accept (api/test_fuzz.py holds
# the two to each other): a request the document allows is not refused, one it forbids is.


def any_case(word: str) -> str:
    """A regular expression matching `word` in any case: `base` -> `[bB][aA][sS][eE]`."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


NO_NUL = "^[^\\x00]*$"  # query and path values never hold a NUL (endpoint.refuse_nul)
_VARIANT_BODY = f"(?!{any_case('base')}$){VARIANT_PATTERN.pattern[1:-1]}"
VARIANT_SCHEMA = {"type": "string", "pattern": f"^(base|{_VARIANT_BODY})$"}
NEW_VARIANT_SCHEMA = {"type": "string", "pattern": f"^{_VARIANT_BODY}$", "description": "not `base` in any case"}

ConnectionId = Annotated[
    str,
    AfterValidator(validate_connection_id),
    WithJsonSchema({"type": "string", "pattern": CONNECTION_ID_PATTERN.pattern, "not": {"enum": [".", ".."]}}),
]
Variant = Annotated[str, AfterValidator(validate_variant), WithJsonSchema(VARIANT_SCHEMA)]  # `base` included
ProviderConfigKey = Annotated[str, Field(min_length=1, max_length=255, pattern=NO_NUL)]
Text = Annotated[str, Field(pattern=NO_NUL)]  # a query or path value


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC (naive ones are taken as UTC), or a ValueError when UTC cannot name it (year 0 or 10000)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("the moment is outside the years 1 to 9999 once converted to UTC") from None


UtcDateTime = Annotated[datetime, AfterValidator(_in_utc)]


class Lenient(BaseModel):
    """A request part where unknown names are ignored (Nango's clients send more than we read)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Strict(BaseModel):
    """A request part where an unknown name is an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Success(BaseModel):
    """The answer of a route that only acts: `{"success": true}`."""

    success: bool
