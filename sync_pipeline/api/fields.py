"""What the request and response models share: the names sync_pipeline validates itself, as pydantic types."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sync_pipeline.keys import validate_connection_id, validate_variant

ConnectionId = Annotated[str, AfterValidator(validate_connection_id)]
Variant = Annotated[str, AfterValidator(validate_variant)]  # `base` included
ProviderConfigKey = Annotated[str, Field(min_length=1, max_length=255)]


class Lenient(BaseModel):
    """A request part where unknown names are ignored (Nango's clients send more than we read)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Strict(BaseModel):
    """A request part where an unknown name is an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Success(BaseModel):
    """The answer of a route that only acts: `{"success": true}`."""

    success: bool
