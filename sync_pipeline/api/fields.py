"""Field types shared by the request models: the names sync_pipeline validates itself, as pydantic types."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sync_pipeline.keys import validate_connection_id, validate_variant

ConnectionId = Annotated[str, AfterValidator(validate_connection_id)]
Variant = Annotated[str, AfterValidator(validate_variant)]  # `base` included
ProviderConfigKey = Annotated[str, Field(min_length=1, max_length=255)]


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
