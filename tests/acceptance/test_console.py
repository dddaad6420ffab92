"""The duty console in a real browser: headless Debian Chromium driven by Playwright.

An officer logs in with a token; a red alert appears without a reload, with its
escalation countdown; they acknowledge it and the countdown disappears. The screenshot
is kept in .run/artifacts/ (CI keeps .run/).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.acceptance.conftest import cli, logs
from warning.config import Settings
from warning.runner import Processes

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / ".run" / "artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]


def test_officer_sees_a_red_alert_live_and_acknowledges_it(settings: Settings, pipeline: Processes,
                                                           tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it (deploy/local/stack.py browser)"
    created = cli(settings, "tokens", "create", "--role", "officer", "--id", "off-nt", "--area", "440305001",
                  "--level", "township")
    token = orjson.loads(created.stdout)["token"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{settings.api_url}/console")
            page.fill("#token", token)
            page.click("#login-button")
            expect(page.locator("#who")).to_have_text("off-nt (officer · township)")
            expect(page.locator("#live")).to_contain_text("live", timeout=15_000)
            expect(page.locator("article.alert")).to_have_count(0)

            feed = tmp_path / "feed.jsonl"
            feed.write_bytes(orjson.dumps({"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 62.0,
                                           "unit": "%LEL", "observed_at": datetime.now(UTC).isoformat()}) + b"\n")
            assert cli(settings, "feed", "push", str(feed)).returncode == 0

            card = page.locator("article.tier-red")  # arrives over SSE: no reload
            try:
                expect(card).to_have_count(1, timeout=90_000)
            except AssertionError:
                pytest.fail(f"no red alert in the console\n{logs(tmp_path)}")
            expect(card.locator(".badge")).to_have_text("红色 RED")
            expect(card.locator("[data-testid=countdown]")).to_be_visible()
            expect(card.locator("[data-testid=status]")).to_have_text("unacknowledged")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "console-red-alert.png"), full_page=True)

            card.locator("button.ack").click()
            expect(card.locator("[data-testid=status]")).to_have_text("acknowledged", timeout=15_000)
            expect(card.locator("[data-testid=countdown]")).to_have_count(0)
            expect(card).to_contain_text("acknowledged by off-nt")
            card.locator("a[data-report]").click()  # the after-action report, as a page section
            expect(page.locator("#report")).to_contain_text("After-action report")
            expect(page.locator("#report")).to_contain_text("time to acknowledge: township")
            page.screenshot(path=str(ARTIFACTS / "console-acknowledged.png"), full_page=True)
        finally:
            browser.close()
    alert_id = f"gas-440305001-{datetime.fromisoformat(orjson.loads(feed.read_bytes())['observed_at']):%Y%m%dT%H%M%SZ}"
    status = orjson.loads(cli(settings, "status", alert_id, "--json").stdout)
    assert [a["by"] for a in status["acks"]] == ["off-nt"]
    assert pipeline.dead() == []
