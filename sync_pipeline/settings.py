"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def dagster_home() -> Path:
    """The Dagster home: $DAGSTER_HOME, else `.dagster_home` in the working directory."""
    return Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()


def normalize_database_url(url: str) -> str:
    """Pick psycopg2 for a plain PostgreSQL URL: SQLAlchemy 2.1 would select psycopg 3, which is not installed."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def database_url() -> str:
    """The sync_pipeline database: SYNC_PIPELINE_DATABASE_URL, else SQLite in the Dagster home."""
    url = os.environ.get("SYNC_PIPELINE_DATABASE_URL")
    if url:
        return normalize_database_url(url)
    return f"sqlite:///{dagster_home() / 'sync_pipeline.db'}"


SECONDARY_SUFFIX = "~2"  # appended to a delivery id for its copy to the secondary URL


@dataclass(frozen=True)
class WebhookSettings:
    """Where webhooks to the app go: `url` (a connection's `webhook_url_override` wins over it) and, when
    set, `secondary_url` too, which receives a copy of every webhook (as Nango's second webhook URL)."""

    url: str | None
    signing_key: str | None
    send_empty: bool
    secondary_url: str | None = None

    def destinations(self, primary: str | None) -> list[tuple[str, str]]:
        """(delivery id suffix, URL) of each copy of a webhook whose first destination is `primary`."""
        found = [("", primary)] if primary else []
        if self.secondary_url and self.secondary_url != primary:
            found.append((SECONDARY_SUFFIX, self.secondary_url))
        return found

    @property
    def trusted_urls(self) -> frozenset[str]:
        """The operator's own URLs: they may reach private addresses (see sync_pipeline.destinations)."""
        return frozenset(url for url in (self.url, self.secondary_url) if url)

    @classmethod
    def from_env(cls) -> "WebhookSettings":
        return cls(
            secondary_url=os.environ.get("SYNC_PIPELINE_WEBHOOK_URL_SECONDARY") or None,
            url=os.environ.get("SYNC_PIPELINE_WEBHOOK_URL") or None,
            signing_key=os.environ.get("SYNC_PIPELINE_WEBHOOK_SIGNING_KEY")
            or os.environ.get("SYNC_PIPELINE_SECRET_KEY")
            or None,
            send_empty=os.environ.get("SYNC_PIPELINE_WEBHOOK_SEND_EMPTY", "").lower() in {"1", "true", "yes"},
        )


def progress_interval() -> float:
    """Seconds between a run's progress reports (log line and `/sync/status` counts): SYNC_PIPELINE_PROGRESS_SECONDS,
    5 by default. Not per record: a report is a database write."""
    try:
        seconds = float(os.environ.get("SYNC_PIPELINE_PROGRESS_SECONDS") or 5)
    except ValueError:
        raise ValueError("SYNC_PIPELINE_PROGRESS_SECONDS must be a number of seconds") from None
    return max(seconds, 0.1)


def private_webhook_urls_allowed() -> bool:
    """SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS: may a connection's webhook_url_override reach private or loopback
    addresses? Off by default (see sync_pipeline.destinations)."""
    return os.environ.get("SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS", "").lower() in {"1", "true", "yes"}


def render_instance_yaml(template: str, url: str | None) -> str:
    """The instance's dagster.yaml: the repository's file, plus PostgreSQL storage when `url` is PostgreSQL."""
    if url and url.startswith("postgresql"):
        template += POOLED_POSTGRES_STORAGE
    return template


# dagster-postgres's storages, with pooled connections (sync_pipeline/orchestration/pooled_storage.py says why).
POOLED_POSTGRES_STORAGE = "".join(
    f"""
{kind}_storage:
  module: sync_pipeline.orchestration.pooled_storage
  class: PooledPostgres{name}Storage
  config:
    postgres_url:
      env: SYNC_PIPELINE_DATABASE_URL
"""
    for kind, name in (("run", "Run"), ("event_log", "EventLog"), ("schedule", "Schedule"))
)
