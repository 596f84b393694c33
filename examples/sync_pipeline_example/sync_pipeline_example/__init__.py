"""An example user project: Dagster assets downstream of sync_pipeline's synced records."""
