"""Change counts of a run generation per stream, kept in the database so a resumed run counts every attempt.

A run that crashes and resumes keeps its generation; its first attempt's counts are still here, and the
webhook that closes the run reports the sum. Counts are added in the transaction that writes the records,
so a kill between the two cannot lose or double a batch.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from sync_pipeline.store._database import dialect_insert
from sync_pipeline.store._schema import run_tallies


def begin(conn: Connection, sid: int, generation: str, last_seq: int) -> int:
    """Start counting `generation` on the stream unless it already is (a resumed attempt); returns the
    stream's low watermark of the generation: its last sequence number when the first attempt began."""
    row = conn.execute(
        select(run_tallies.c.generation, run_tallies.c.low_watermark).where(run_tallies.c.stream_id == sid)
    ).first()
    if row is not None and row.generation == generation:
        return row.low_watermark
    fresh = {"generation": generation, "low_watermark": last_seq, "added": 0, "updated": 0, "deleted": 0}
    statement = dialect_insert(conn, run_tallies).values(stream_id=sid, **fresh)
    conn.execute(statement.on_conflict_do_update(index_elements=[run_tallies.c.stream_id], set_=fresh))
    return last_seq


def add(conn: Connection, sid: int, generation: str, added: int = 0, updated: int = 0, deleted: int = 0) -> None:
    """Add one write's changes to the generation's counts (nothing when another generation took over)."""
    if not (added or updated or deleted):
        return
    conn.execute(
        update(run_tallies)
        .where(run_tallies.c.stream_id == sid, run_tallies.c.generation == generation)
        .values(
            added=run_tallies.c.added + added,
            updated=run_tallies.c.updated + updated,
            deleted=run_tallies.c.deleted + deleted,
        )
    )


def read(conn: Connection, sid: int, generation: str) -> tuple[int, int, int] | None:
    """(added, updated, deleted) of every attempt of `generation` so far, or None when it is not counted."""
    row = conn.execute(
        select(run_tallies.c.added, run_tallies.c.updated, run_tallies.c.deleted).where(
            run_tallies.c.stream_id == sid, run_tallies.c.generation == generation
        )
    ).first()
    return tuple(row) if row is not None else None
