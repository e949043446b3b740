"""The trace viewer in a real headless browser (Debian's chromium, driven by Playwright) against
a live Countdown server: a real MCTS trace drawn node for node, its chosen path highlighted, its
pruned branches greyed, the replay, the list with filters, and the key the data needs. The
pages run under their real Content-Security-Policy, so waits use locators, never evaluated strings.

`PONDER_SAVE_SCREENSHOTS=1` writes the screenshot to docs/images/trace-viewer.png (the one the
README shows); otherwise it goes to the test's tmp folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PUZZLE = "countdown target=31 numbers=19,4,45,99"
# Step-valued MCTS: a branching tree whose abandoned branches are greyed (the screenshot's), and
# the default MCTS with rollouts, where every step is continued into a finished reply.
STEP_VALUED = {"strategy": "mcts", "budget_tokens": 512, "rollout": False, "seed": 1}
ROLLOUTS = {"strategy": "mcts", "budget_tokens": 256, "seed": 4}
END_OF_REPLY = "(end of reply)"
SCREENSHOT = REPO_ROOT / "docs" / "images" / "trace-viewer.png"
READY = "body[data-ready=true]"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")


def flat(root: dict[str, Any]) -> list[dict[str, Any]]:
    nodes, stack = [], [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(reversed(node["children"]))
    return nodes


def record_search(server: Any, search: dict[str, Any]) -> dict[str, Any]:
    """A real search, recorded, and its trace as the API returns it."""
    body = {"model": "countdown", "messages": [{"role": "user", "content": PUZZLE}], "search": search}
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=120) as http:
        reply = http.post("/v1/chat/completions", json={**body, "search": {**search, "trace": True}})
        assert reply.status_code == 200, reply.text
        trace = http.get(f"/v1/traces/{reply.json()['search']['trace_id']}")
        assert trace.status_code == 200, trace.text
        return dict(trace.json())


@pytest.fixture(scope="module")
def mcts_trace(countdown_server: Any) -> dict[str, Any]:
    return record_search(countdown_server, STEP_VALUED)


@pytest.fixture(scope="module")
def rollout_trace(countdown_server: Any) -> dict[str, Any]:
    return record_search(countdown_server, ROLLOUTS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own sessionStorage) and page."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def open_trace(page: Any, server: Any, trace_id: str) -> None:
    page.goto(f"{server.base_url}/traces/{trace_id}#key={server.api_key}")
    page.wait_for_selector(READY, timeout=20_000)


@pytest.mark.parametrize("which", ["mcts_trace", "rollout_trace"])
def test_viewer_draws_the_mcts_tree_with_its_chosen_path(
    page: Any, countdown_server: Any, which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    trace = request.getfixturevalue(which)
    result, nodes = trace["tree"], flat(trace["tree"]["tree"]["root"])
    open_trace(page, countdown_server, trace["id"])
    assert "#key" not in page.url  # the key left the address bar for the tab's sessionStorage
    drawn = page.locator("#canvas .node:not(.root)")
    assert drawn.count() == result["tree"]["num_nodes"] == len(nodes) - 1 > 1
    chosen = page.locator("#canvas .node.chosen:not(.root) .step").all_inner_texts()
    assert [text for text in chosen if text != END_OF_REPLY] == result["steps"]
    assert page.locator("#canvas .edge.chosen").count() == len(chosen)
    pruned = page.locator("#canvas .node.pruned")
    assert pruned.count() == sum(n["is_pruned"] for n in nodes)
    if which == "mcts_trace":  # step-valued MCTS abandons branches: they are drawn greyed
        assert pruned.count() > 0 and float(pruned.first.evaluate("e => getComputedStyle(e).opacity")) < 1
    visited = page.locator("#canvas .node:not(.root) .scores").all_inner_texts()
    assert any(" N " in f" {text}" for text in visited)  # MCTS visits and values are drawn
    assert page.locator("#answer").inner_text() == trace["answer"]
    page.locator("#canvas .node.chosen:not(.root)").last.click()
    assert page.locator("#details").is_visible()
    is_saved = which == "mcts_trace" and os.environ.get("PONDER_SAVE_SCREENSHOTS") == "1"
    target = SCREENSHOT if is_saved else tmp_path / SCREENSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")  # the details panel is sticky: show it at the top
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def test_replay_reveals_nodes_in_creation_order(page: Any, countdown_server: Any, mcts_trace: dict) -> None:
    nodes = flat(mcts_trace["tree"]["tree"]["root"])
    open_trace(page, countdown_server, mcts_trace["id"])
    page.locator("#step").fill("3")  # the replay slider: the first three nodes made, and the root
    visible = page.locator("#canvas .node:not(.future)")
    assert visible.count() == 4
    first_three = sorted((n for n in nodes if 0 < n["seq"] <= 3), key=lambda n: n["seq"])
    assert [int(s) for s in visible.evaluate_all("els => els.map(e => e.dataset.seq)")] == sorted(
        [0] + [n["seq"] for n in first_three]
    )
    page.locator("#speed").select_option("40")
    page.locator("#play").click()  # replays from step 3 to the end
    total = len(nodes) - 1
    sync_api.expect(page.locator("#step-label")).to_have_text(f"{total} / {total}", timeout=20_000)
    assert page.locator("#canvas .node.future").count() == 0


def test_list_filters_and_links_to_the_tree(page: Any, countdown_server: Any, mcts_trace: dict) -> None:
    page.goto(f"{countdown_server.base_url}/traces#key={countdown_server.api_key}")
    row = page.locator(f"tr[data-trace-id='{mcts_trace['id']}']")
    row.wait_for(timeout=20_000)
    assert row.locator("td").nth(3).inner_text() == "mcts"
    page.locator("#filter-model").fill("no-such-model")
    page.locator("#filters button").click()
    page.locator("#empty").wait_for(state="visible")
    assert page.locator("tr.trace-row").count() == 0 and "model=no-such-model" in page.url
    page.locator("#filter-model").fill("countdown")
    page.locator("#filters button").click()
    row.wait_for()
    row.locator("a.open").click()
    page.wait_for_selector(READY, timeout=20_000)  # the key stayed in the tab: no form asked for it
    assert page.url.endswith(f"/traces/{mcts_trace['id']}")


def test_without_a_key_the_page_shows_no_data_until_given_one(
    page: Any, countdown_server: Any, mcts_trace: dict
) -> None:
    page.goto(f"{countdown_server.base_url}/traces/{mcts_trace['id']}")
    page.locator("#key-form").wait_for(state="visible")
    assert page.locator("#canvas .node").count() == 0
    page.locator("#key-input").fill("sk-wrong")
    page.locator("#key-form button").click()
    sync_api.expect(page.locator("#key-reason")).to_contain_text("refused")
    assert page.locator("#canvas .node").count() == 0
    page.locator("#key-input").fill(countdown_server.api_key)
    page.locator("#key-form button").click()
    page.wait_for_selector(READY, timeout=20_000)
    assert page.locator("#key-form").is_hidden()


def test_pages_are_static_shells_and_the_data_needs_the_key(countdown_server: Any, mcts_trace: dict) -> None:
    base, trace_id = countdown_server.base_url, mcts_trace["id"]
    shell = httpx.get(f"{base}/traces/{trace_id}")
    assert shell.status_code == 200 and trace_id not in shell.text and "mcts" not in shell.text
    assert "script-src 'self'" in shell.headers["content-security-policy"]
    assert httpx.get(f"{base}/v1/traces/{trace_id}").status_code == 401
    assert httpx.get(f"{base}/viewer/trace.js").headers["content-type"].startswith("text/javascript")
    for name in ("secret.py", "..%2Froutes_viewer.py", "trace.html"):
        assert httpx.get(f"{base}/viewer/{name}").status_code == 404
