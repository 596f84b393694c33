"""What the benchmarks share: the generated contacts workload and temporary databases."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sync_pipeline.settings import normalize_database_url, render_instance_yaml

REPO = Path(__file__).resolve().parents[1]

if TYPE_CHECKING:
    from dagster import DagsterInstance

PAGE = 1000


class BenchContact(BaseModel):
    id: str
    first_name: str
    last_name: str
    email: str
    company: str
    title: str
    phone: str
    city: str
    country: str
    score: int
    updated_at: str


# The fields that cycle are built once: generating a record is the fake provider's cost, paid inside every
# contender's timing, so it is kept small (1.1 us a record instead of 2.0 us of f-strings).
_FIRST = [f"First{i}" for i in range(9973)]
_LAST = [f"Last{i}" for i in range(7919)]
_EMAIL_DOMAIN = [f"@example{i}.com" for i in range(97)]
_COMPANY = [f"Company {i} Incorporated" for i in range(5003)]
_PHONE_AREA = [f"+1-555-{i:03d}-" for i in range(1000)]
_PHONE_LINE = [f"{i:04d}" for i in range(10000)]
_CITY = [f"City number {i}" for i in range(301)]


def record(n: int, version: int) -> dict:
    """Contact n as of run `version`: ~300 bytes of JSON. 1% change in run 2."""
    edited = version > 1 and n % 100 == 0
    return {
        "id": f"contact-{n:08d}",
        "first_name": _FIRST[n % 9973],
        "last_name": _LAST[n % 7919] + "-edited" if edited else _LAST[n % 7919],
        "email": f"person{n}{_EMAIL_DOMAIN[n % 97]}",
        "company": _COMPANY[n % 5003],
        "title": "Senior Vice President of Something Important",
        "phone": _PHONE_AREA[n % 1000] + _PHONE_LINE[n % 10000],
        "city": _CITY[n % 301],
        "country": "United States of America",
        "score": n % 1000,
        "updated_at": "2026-02-01T00:00:00Z" if edited else "2026-01-01T00:00:00Z",
    }


def pages(total: int, version: int) -> Iterator[list[dict]]:
    """Every record of run `version`, a page at a time; in run 2, 0.5% are gone."""
    batch: list[dict] = []
    for n in range(total):
        if version > 1 and n % 200 == 1:
            continue
        batch.append(record(n, version))
        if len(batch) == PAGE:
            yield batch
            batch = []
    if batch:
        yield batch


def dlt_available() -> bool:
    try:
        import dlt  # noqa: F401
    except ImportError:
        return False
    return True


def backends() -> list[tuple[str, str | None]]:
    """(name, server) to measure on: SQLite, and PostgreSQL when SYNC_PIPELINE_BENCH_DATABASE_URL is set."""
    server = os.environ.get("SYNC_PIPELINE_BENCH_DATABASE_URL") or None
    return [("SQLite", None)] + ([("PostgreSQL", server)] if server else [])


@contextlib.contextmanager
def database(server: str | None, name: str = "sync_pipeline") -> Iterator[str]:
    """A temporary SQLite file, or a fresh PostgreSQL database on `server`, dropped afterwards."""
    if server is None:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/{name}.db"
        return
    base = make_url(normalize_database_url(server))
    database_name = f"sp_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database_name}"'))
    try:
        yield base.set(database=database_name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)'))
        admin.dispose()


def make_instance(home: Path, url: str, *, postgres: bool) -> "DagsterInstance":
    """A Dagster instance in `home` from the repository's dagster.yaml, on `url` when `postgres`."""
    from dagster import DagsterInstance  # imported here: the full-refresh children measure their own RSS

    (home / "dagster.yaml").write_text(render_instance_yaml((REPO / "dagster.yaml").read_text(), url if postgres else None))
    os.environ["SYNC_PIPELINE_DATABASE_URL"] = url
    return DagsterInstance.from_config(str(home))
