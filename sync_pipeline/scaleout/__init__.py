"""Scale-out: runs launched through dagster-celery's CeleryRunLauncher onto Celery workers, when a broker is set."""

from sync_pipeline.scaleout.instance import (
    BROKER_VARIABLE,
    DEFAULT_QUEUE,
    ScaleOutError,
    broker_url,
    render_scaleout_yaml,
)

__all__ = ["BROKER_VARIABLE", "DEFAULT_QUEUE", "ScaleOutError", "broker_url", "render_scaleout_yaml"]
