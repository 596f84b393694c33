"""Scale-out with Celery workers: they share Dagster's storage and the records cache, so only PostgreSQL can
serve them; every module here is marked postgres_only (deselected on the SQLite pass, not skipped)."""
