"""Fixtures of the example project's tests: the built-in integrations' fakes and harness."""

from sync_pipeline_tests.integrations.conftest import (  # noqa: F401  (fixtures shared with the integration tests)
    _github_server,
    _slack_server,
    github_api,
    slack_api,
    sync,
)
