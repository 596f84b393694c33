"""The operator commands' HTTP client: the API's address and key, and its errors as exit codes.

The CLI talks to the HTTP API (never straight to the database): it works against any deployment it
can reach, creates nothing, and every rule the API enforces (validation, limits) holds for it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from sync_pipeline.settings import dagster_home

DEFAULT_URL = "http://127.0.0.1:3003"
URL_VARIABLE = "SYNC_PIPELINE_URL"
KEY_VARIABLE = "SYNC_PIPELINE_SECRET_KEY"

# Exit codes: 0 done; 1 the API refused (unknown connection, invalid input...); 2 wrong usage (click);
# 3 no deployment: the API cannot be reached or no secret key was found.
API_REFUSED, UNREACHABLE = 1, 3


class ApiRefused(click.ClickException):
    exit_code = API_REFUSED


class Unreachable(click.ClickException):
    exit_code = UNREACHABLE


def find_key() -> str:
    """$SYNC_PIPELINE_SECRET_KEY, else the key file `sync-pipeline dev` wrote in the Dagster home (never created)."""
    key = os.environ.get(KEY_VARIABLE, "").strip()
    if key:
        return key
    key_file = Path(dagster_home()) / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    raise Unreachable(
        f"no secret key: set {KEY_VARIABLE}, or run this in the folder where `sync-pipeline dev` runs "
        f"(it keeps the key in .dagster_home/secret_key); looked for {key_file}"
    )


@dataclass
class Api:
    url: str
    key: str | None = None

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None, headers: dict | None = None) -> Any:
        """The JSON answer, or the API's own error message as a failure of the command."""
        sent = {"Authorization": f"Bearer {self.key or find_key()}", **(headers or {})}
        try:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                response = client.request(method, path, json=json, params=params, headers=sent)
        except httpx.TransportError as error:
            raise Unreachable(
                f"cannot reach the sync_pipeline API at {self.url} ({type(error).__name__}: {error}): is "
                f"`sync-pipeline dev` (or `serve`) running? Set --url or {URL_VARIABLE} to its address"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return body
        error = (body or {}).get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            details = "; ".join(f"{'.'.join(map(str, e.get('path') or []))}: {e.get('message')}" for e in error.get("errors") or [])
            raise ApiRefused(f"{error.get('message')} ({error.get('code')}, HTTP {response.status_code})" + (f": {details}" if details else ""))
        raise ApiRefused(f"HTTP {response.status_code} from {self.url}{path}: {response.text[:300]}")

    def get(self, path: str, **kwargs) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Any:
        return self.request("POST", path, **kwargs)
