"""Every example in docs/http-api.md, sent in order to the served API; each answer must match the one shown.

The page's requests are `http` blocks starting with a method; the answer is the next `http` block (`HTTP/1.1
<status>`, a blank line, a JSON body). A documented answer is a pattern: objects must have the keys shown
(others may be there), lists the items shown, and `"..."` matches any value. Where the page says the daemon
would run a sync (before reading records or status), the test runs the due partitions the way the
scheduler sensor does, in process.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_pipeline.api import create_app
from sync_pipeline.integrations import load_registry
from sync_pipeline.orchestration.scheduling import evaluate_schedule
from sync_pipeline.store import utcnow
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.fakes.slack import SlackApi
from sync_pipeline_tests.harness import SyncHarness

DOC = Path(__file__).resolve().parents[1] / "docs" / "http-api.md"
DOCUMENTED_SLACK = "http://127.0.0.1:4010"  # the fake Slack the page talks about; replaced by the real one
SECRET = "docs-secret-key"
BLOCK = re.compile(r"```http\n(.*?)```", re.DOTALL)


def examples(text: str) -> list[tuple[str, str]]:
    """(request, answer) pairs of the page, in order."""
    blocks = BLOCK.findall(text)
    pairs = []
    for request, answer in zip(blocks[::2], blocks[1::2]):
        assert not request.startswith("HTTP/"), f"an answer without its request: {request[:80]}"
        assert answer.startswith("HTTP/1.1 "), f"a request without its answer: {request[:80]}"
        pairs.append((request, answer))
    assert len(blocks) % 2 == 0
    return pairs


def parse_request(block: str, slack_url: str) -> tuple[str, str, dict[str, str], bytes]:
    head, _, body = block.replace(DOCUMENTED_SLACK, slack_url).partition("\n\n")
    first, *header_lines = head.strip().splitlines()
    method, path = first.split(" ", 1)
    headers = dict(line.split(": ", 1) for line in header_lines)
    return method, path, headers, body.strip().encode()


def parse_answer(block: str, slack_url: str) -> tuple[int, Any]:
    head, _, body = block.replace(DOCUMENTED_SLACK, slack_url).partition("\n\n")
    return int(head.split()[1]), json.loads(body)


def matches(documented: Any, actual: Any, where: str = "$") -> list[str]:
    """Where `actual` differs from the documented pattern (empty when it matches)."""
    if documented == "...":
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        return [
            problem
            for key, value in documented.items()
            for problem in (matches(value, actual[key], f"{where}.{key}") if key in actual else [f"{where}.{key}: missing"])
        ]
    if isinstance(documented, list):
        if not isinstance(actual, list) or len(actual) != len(documented):
            return [f"{where}: expected {len(documented)} items, got {actual!r}"]
        return [problem for i, (d, a) in enumerate(zip(documented, actual)) for problem in matches(d, a, f"{where}[{i}]")]
    return [] if documented == actual else [f"{where}: documented {documented!r}, served {actual!r}"]


@pytest.fixture
def slack():
    api = SlackApi()
    with ServedApp(api) as served:
        api.url = served.url
        for user_id, name in (("U001", "Ada"), ("U002", "Grace"), ("U003", "Alan")):
            api.put(user_id, name)
        yield api


def test_every_example_of_the_api_reference_is_what_the_api_answers(instance, store, database_url, slack):
    registry = load_registry(extra_modules="")
    harness = SyncHarness(instance, store, database_url, registry)
    app = create_app(registry=registry, instance=instance, store=store, secret_key=SECRET)
    pairs = examples(DOC.read_text())
    assert len(pairs) >= 20
    with ServedApp(app) as served, httpx.Client(base_url=served.url, timeout=30) as client:
        for request, answer in pairs:
            method, path, headers, body = parse_request(request, slack.url)
            if method == "GET" and path.startswith(("/records", "/sync/status")):
                run_due_partitions(harness, registry)
            headers.setdefault("Authorization", f"Bearer {SECRET}")
            response = client.request(method, path, headers=headers, content=body or None)
            status, documented = parse_answer(answer, slack.url)
            assert response.status_code == status, f"{method} {path}: {response.text}"
            problems = matches(documented, response.json())
            assert not problems, f"{method} {path}:\n" + "\n".join(problems) + f"\nserved: {response.text}"


def run_due_partitions(harness: SyncHarness, registry) -> None:
    """What the scheduler sensor and the daemon would have done by now: run every due partition once."""
    tick = evaluate_schedule(harness.instance, harness.store, registry, utcnow())
    for request in tick.requests:
        sync = registry.by_qualified_name(request.job_name)
        connection_id, _, variant = request.partition_key.partition("::")
        harness.run(sync.integration.name, sync.name, connection_id, variant)
