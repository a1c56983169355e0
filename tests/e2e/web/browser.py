"""Headless Chromium for the web-app tests: Debian's package, driven by Playwright.

Playwright cannot download its own browsers here, so it runs the system Chromium
(``make test`` installs the ``chromium`` package when it is missing). axe-core is
injected from the web app's ``node_modules`` (installed by ``make install``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from playwright.async_api import Page, Route

REPO_ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # Without these Chromium phones home at start-up and its connections are refused.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = REPO_ROOT / "server" / "web" / "app" / "node_modules" / "axe-core" / "axe.min.js"


async def serious_accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now (WCAG 2 A/AA)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, not added as a <script>: the page's
        # own Content-Security-Policy stays in force for everything the app does.
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            });
            return JSON.stringify(r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary).slice(0, 5),
            })));
        }"""
    )
    violations: list[dict[str, Any]] = json.loads(result)
    return [v for v in violations if v["impact"] in {"serious", "critical"}]


async def slowly(route: Route) -> None:
    """A route handler that holds each request half a second, as a busy server would."""
    await asyncio.sleep(0.5)
    await route.continue_()
