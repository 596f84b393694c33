"""The asset checks of every sync asset, evaluated by each run: the mass-deletion guard, and the share of
records the provider sent that failed their model.

The guard itself stops a run before it deletes (sdk/deletions.py): its check fails (ERROR) on the models a
run would have emptied, and warns when a trigger's `allowMassDelete` let such a run through, or when a sync's
own `batch_delete` calls removed more than the share. The invalid share warns (the valid records are saved).
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from sync_pipeline.orchestration.run_metadata import asset_key
from sync_pipeline.sdk.deletions import DEFAULT_MAX_DELETED_SHARE, MIN_DELETIONS, MassDeletionBlocked, Sweep
from sync_pipeline.sdk.runner import RunOutcome

MASS_DELETION = "mass_deletion_guard"
INVALID_SHARE = "invalid_records_share"
MAX_INVALID_SHARE = 0.05  # of the records the provider sent in the run


def check_specs(key: AssetKey) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            MASS_DELETION,
            asset=key,
            description=f"Fails when a run would delete more than {DEFAULT_MAX_DELETED_SHARE:.0%} (the sync's "
            f"max_deleted_share, or the connection's metadata) of the records a partition had, at least "
            f"{MIN_DELETIONS}: the run then deletes nothing. An expired token or an empty answer looks like "
            "everything was deleted. Warns when a trigger's allowMassDelete let such a run through.",
        ),
        AssetCheckSpec(
            INVALID_SHARE,
            asset=key,
            description=f"Warns when more than {MAX_INVALID_SHARE:.0%} of the records a run received failed their "
            "model (they are logged with their id and field, and not saved).",
        ),
    ]


def check_results(key: AssetKey, outcome: RunOutcome, model: str) -> list[AssetCheckResult]:
    counts = outcome.counts[model]
    total = outcome.totals.get(model, 0)
    deleted = Sweep(model, counts.deleted, max(0, total - counts.added + counts.deleted))
    invalid = outcome.invalid.get(model, 0)
    # Valid records saved by the whole run (all its models) plus this model's invalid ones: exact for one model.
    received = outcome.progress.get("records_saved", 0) + invalid
    invalid_share = invalid / received if received else 0.0
    return [
        AssetCheckResult(
            asset_key=key,
            check_name=MASS_DELETION,
            passed=not deleted.exceeds(outcome.max_deleted_share),
            severity=AssetCheckSeverity.WARN,
            metadata={**_deletion_metadata(deleted, outcome.max_deleted_share), "allowed_by_trigger": outcome.mass_delete_allowed},
        ),
        AssetCheckResult(
            asset_key=key,
            check_name=INVALID_SHARE,
            passed=invalid_share <= MAX_INVALID_SHARE,
            severity=AssetCheckSeverity.WARN,
            metadata={"invalid_records": invalid, "records_received": received, "invalid_share": round(invalid_share, 4)},
        ),
    ]


def blocked_results(error: MassDeletionBlocked, integration: str) -> list[AssetCheckResult]:
    """The guard's failed check on each model whose deletions it stopped."""
    return [
        AssetCheckResult(
            asset_key=asset_key(integration, sweep.model),
            check_name=MASS_DELETION,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=str(error),
            metadata={**_deletion_metadata(sweep, error.limit), "blocked": True},
        )
        for sweep in error.sweeps
    ]


def _deletion_metadata(sweep: Sweep, limit: float) -> dict[str, object]:
    return {"deleted": sweep.deleting, "records_before": sweep.before, "deleted_share": round(sweep.share, 4), "limit": limit}
