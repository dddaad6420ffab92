"""The duty console as an officer's desk, in headless Chromium (Playwright): issue by hand
in the form, a second officer approves from the approvals panel, the map colours the
grids and hatches a drill, a cancel from the card, and the history view. Screenshots go
to .run/artifacts/ (docs/ keeps copies for README)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.sinks import read_sink
from tests.acceptance.test_console import ARTIFACTS, CHROMIUM_FLAGS
from tests.conftest import wait_for
from tests.integration.test_api import token
from warning.config import Settings
from warning.runner import Processes

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("settings", [None], indirect=True)]


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it (deploy/local/stack.py browser)"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def desk(browser: Any, settings: Settings, secret: str, who: str) -> Any:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{settings.api_url}/console")
    page.fill("#token", secret)
    page.click("#login-button")
    expect(page.locator("#who")).to_contain_text(who)
    expect(page.locator("#live")).to_contain_text("live", timeout=15_000)
    return page


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_issue_approve_drill_cancel_and_history_in_the_console(
        settings: Settings, pipeline: Processes, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    nt = desk(browser, settings, token(settings, "--role", "officer", "--id", "off-nt", "--area", "440305001",
                                       "--level", "township"), "off-nt")
    ns = desk(browser, settings, token(settings, "--role", "officer", "--id", "off-ns", "--area", "440305",
                                       "--level", "district"), "off-ns")
    expect(nt.locator("#map path[data-grid]")).to_have_count(2)  # her jurisdiction: 南头街道's two grids
    expect(ns.locator("#map path[data-grid]")).to_have_count(3)

    nt.select_option("#issue-hazard", "rainstorm")
    nt.select_option("#issue-tier", "orange")
    nt.select_option("#issue-areas", ["440305001"])
    nt.fill("#issue-zh-headline", "南头街道暴雨橙色预警")
    nt.fill("#issue-en-headline", "Orange rainstorm warning for Nantou")
    nt.click("#issue-submit")
    expect(nt.locator("#issue-result")).to_contain_text("residents wait for approval")
    card = nt.locator("article.tier-orange")
    expect(card).to_have_count(1, timeout=30_000)
    expect(card.locator("[data-testid=area]")).to_have_text("南头街道 · Nantou Subdistrict")
    expect(card.locator("[data-testid=pending]")).to_contain_text("residents")
    expect(card.locator("button.approve")).to_have_count(0)  # her own draft
    expect(nt.locator("#map path[data-grid='440305001001']")).to_have_attribute("data-tier", "orange")
    alert_id = card.get_attribute("data-alert")
    residents = {"res-nt-01", "res-nt-02", "res-nt-03", "res-nt-04"}

    def told(channels: tuple[str, ...]) -> set[str]:
        return {m["recipient"] for ch in channels for m in read_sink(settings.sink_dir / f"{ch}.jsonl")
                if m["alert_id"] == alert_id}

    wait_for(lambda: {"gw-nt-01", "gw-nt-02"} <= told(("sms", "push")), 60, "the grid workers, at once")
    assert not residents & told(("sms", "push"))  # the residents wait for a second officer

    pending = ns.locator(f"#approvals [data-approval='{alert_id}']")
    expect(pending).to_contain_text("南头街道暴雨橙色预警")
    expect(pending.locator("[data-testid=hold]")).to_have_text(__import__("re").compile(r"^(9|10):\d\d$"))
    shot(ns, "console-approvals.png")
    pending.locator("button.approve").click()
    expect(ns.locator("#approvals [data-approval]")).to_have_count(0, timeout=30_000)
    wait_for(lambda: residents <= told(("sms", "push")), 60, "the residents' messages after the approval")

    ns.select_option("#issue-hazard", "gale")
    ns.select_option("#issue-tier", "yellow")
    ns.select_option("#issue-areas", ["440305002"])
    ns.check("#issue-drill")
    ns.click("#issue-submit")
    drill = ns.locator("article.drill")
    expect(drill).to_have_count(1, timeout=30_000)
    expect(drill.locator("[data-testid=drill-banner]")).to_contain_text("EXERCISE")
    expect(ns.locator("#map path[data-grid='440305002001']")).to_have_attribute("data-drill", "true")
    expect(ns.locator("#map path[data-grid='440305001001']")).to_have_attribute("data-tier", "orange")
    ns.locator("#map path[data-grid='440305002001']").click(force=True)
    expect(ns.locator("#grid-detail [data-testid=grid-alerts]")).to_contain_text("EXERCISE")
    expect(ns.locator("#grid-detail")).to_contain_text("陈静")  # the grid's worker, by name
    shot(ns, "console-drill-map.png")

    card = nt.locator(f"article[data-alert='{alert_id}']")
    card.locator("a[data-timeline]").click()
    expect(nt.locator("[data-testid=timeline]")).to_contain_text("approve · off-ns (console)")
    card.locator("details.manage summary").click()
    card.locator("input.reason").fill("雨已停 rain has stopped")
    card.locator("button.cancel").click()
    expect(nt.locator(f"article[data-alert='{alert_id}']")).to_have_count(0, timeout=30_000)
    nt.click("#show-history")
    closed = nt.locator(f"#history tr[data-closed='{alert_id}']")
    expect(closed).to_contain_text("cancelled")
    shot(nt, "console-history.png")
    closed.locator("a[data-report]").click()
    expect(nt.locator("#report")).to_contain_text("After-action report")

    expect(nt.locator("#stream-down")).to_be_hidden()
    pipeline.kill("api")  # the event stream goes down: the desk says so instead of showing stale alerts
    expect(nt.locator("#stream-down")).to_be_visible(timeout=15_000)
    expect(nt.locator("#live")).to_contain_text("reconnecting")
