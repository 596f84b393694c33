"""`python -m sync_pipeline.cli`: the `sync-pipeline` command."""

from sync_pipeline.cli import main

main()
