"""The HTTP API of docs/http-api.md (Nango's dialect), a Starlette application served by uvicorn."""

from sync_pipeline.api.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
