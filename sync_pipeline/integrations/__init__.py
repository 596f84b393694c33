"""The integrations sync_pipeline ships (Slack, Salesforce, GitHub) and the loading of users' own."""

from __future__ import annotations

import importlib
import os

from sync_pipeline.sdk.declaration import Integration, Registry

BUILT_IN = ("sync_pipeline.integrations.slack", "sync_pipeline.integrations.salesforce", "sync_pipeline.integrations.github")


def load_registry(extra_modules: str | None = None) -> Registry:
    """The built-in integrations plus those in the modules named by SYNC_PIPELINE_INTEGRATIONS (comma-separated)."""
    names = list(BUILT_IN)
    extra = extra_modules if extra_modules is not None else os.environ.get("SYNC_PIPELINE_INTEGRATIONS", "")
    names += [name.strip() for name in extra.split(",") if name.strip()]
    found: dict[str, Integration] = {}
    for name in names:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, Integration):
                found[value.name] = value
    return Registry(found)
