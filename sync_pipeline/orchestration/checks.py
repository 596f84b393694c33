"""The asset checks of every sync asset, evaluated by each run: a guard against mass deletion, and the share of
records the provider sent that failed their model. Both warn (the provider's data is still saved as it is)."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from sync_pipeline.sdk.runner import RunOutcome

MASS_DELETION = "no_mass_deletion"
INVALID_SHARE = "invalid_records_share"
MAX_DELETED_SHARE = 0.5  # of the records the partition had before the run
MIN_DELETIONS = 5  # a run deleting fewer records than this never counts as a mass deletion
MAX_INVALID_SHARE = 0.05  # of the records the provider sent in the run


def check_specs(key: AssetKey) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            MASS_DELETION,
            asset=key,
            description=f"Warns when one run deletes more than {MAX_DELETED_SHARE:.0%} of the records the partition "
            f"had (at least {MIN_DELETIONS}): an expired token or an empty answer can look like everything was deleted.",
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
    before = max(0, total - counts.added + counts.deleted)
    deleted_share = counts.deleted / before if before else 0.0
    invalid = outcome.invalid.get(model, 0)
    # Valid records saved by the whole run (all its models) plus this model's invalid ones: exact for one model.
    received = outcome.progress.get("records_saved", 0) + invalid
    invalid_share = invalid / received if received else 0.0
    return [
        AssetCheckResult(
            asset_key=key,
            check_name=MASS_DELETION,
            passed=not (counts.deleted >= MIN_DELETIONS and deleted_share > MAX_DELETED_SHARE),
            severity=AssetCheckSeverity.WARN,
            metadata={"deleted": counts.deleted, "records_before": before, "deleted_share": round(deleted_share, 4)},
        ),
        AssetCheckResult(
            asset_key=key,
            check_name=INVALID_SHARE,
            passed=invalid_share <= MAX_INVALID_SHARE,
            severity=AssetCheckSeverity.WARN,
            metadata={"invalid_records": invalid, "records_received": received, "invalid_share": round(invalid_share, 4)},
        ),
    ]
