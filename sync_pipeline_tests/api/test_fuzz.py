"""Schema-driven fuzzing of the served API: requests generated from `GET /openapi.json` (whatever document the
app serves) get no 500 and answers that conform to the document: status codes, content types, bodies, and no
refusal of a request the document allows nor acceptance of one it forbids."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable

from sync_pipeline.sdk.frequency import InvalidFrequency, parse_frequency
from sync_pipeline.store import StreamKey, encode_cursor
from sync_pipeline_tests.api.conftest import SECRET, import_acme

AUTH = {"Authorization": f"Bearer {SECRET}"}
EXAMPLES = 8  # per operation and generation mode: at most ~350 requests, well under a minute per database


def meaningful(case: Any) -> None:
    """What JSON Schema cannot say, made true of a schema-valid request: a frequency between 30 s and 365 days,
    a cursor this server handed out for the stream asked about, a webhook URL outside the refused addresses."""
    body = case.body if isinstance(case.body, dict) else {}
    if isinstance(body.get("frequency"), str):
        try:
            parse_frequency(body["frequency"])
        except InvalidFrequency:
            assume(False)
    if body.get("webhook_url_override"):
        body["webhook_url_override"] = "https://hooks.example.invalid/sync"
    for values, name in ((case.query or {}, "cursor"), (body, "until_cursor")):
        if name in values:
            headers, query = case.headers or {}, case.query or {}
            stream = StreamKey(headers.get("Provider-Config-Key", ""), headers.get("Connection-Id", ""),
                               query.get("model") or body.get("model", ""), query.get("variant") or body.get("variant", "base"))
            values[name] = encode_cursor(0, stream)


def operations(served):
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json", headers=AUTH)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(served, client, acme, mode):
    import_acme(client, acme)  # one connection (and its partitions) for requests to find
    failures = []
    for operation in operations(served):

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def fuzz(case) -> None:
            if mode == schemathesis.GenerationMode.POSITIVE:
                meaningful(case)
            else:  # the key is always sent (below): a case negating it would be judged as if it were missing
                assume(not operation.schema.is_security_param_negated(case))
            case.call_and_validate(base_url=served.url, headers=AUTH)

        try:
            fuzz()
        except Unsatisfiable:
            assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label  # nothing invalid to send: e.g. a
            continue  # provider's webhook, whose body may be anything and which needs no key
        except (Exception, BaseExceptionGroup) as error:  # every operation is tried; failures are reported together
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
