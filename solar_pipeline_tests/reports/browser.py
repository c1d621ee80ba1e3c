"""Open a page from disk in Debian's headless Chromium (driven by Playwright, which downloads no
browser here) with the network switched off, and report what a person would see."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = "/usr/bin/chromium"
# As the machine's notes advise: without the background-networking switches Chromium keeps
# trying Google's hosts, which this closed network refuses.
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Rendered:
    charts: dict[str, dict] = field(default_factory=dict)  # chart id -> {rendered, svg, text}
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    scroll_width: int = 0  # wider than the viewport: the reader must scroll sideways
    headings: list[str] = field(default_factory=list)  # h1 and h2 texts, as a reader sees them
    timed_out: bool = False  # some chart neither rendered nor said it failed
    pwned: object = None  # window.__pwned: set only by a script the page did not mean to run
    tooltips: list[dict] = field(default_factory=list)  # per heat-map row: what hovering shows


def open_page(
    path: Path,
    screenshot: Path | None = None,
    width: int = 1200,
    timeout_ms: int = 30_000,
    hover_rows_of: str | None = None,
) -> Rendered:
    """`hover_rows_of`: the title of a heat map whose rows to point at, one by one, reading the
    tooltip each shows."""
    out = Rendered()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(
                offline=True, viewport={"width": width, "height": 900}, device_scale_factor=1
            )
            page = context.new_page()
            page.on(
                "console",
                lambda m: out.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: out.page_errors.append(str(e)))
            page.on("request", lambda r: out.requests.append(r.url))
            page.goto(path.resolve().as_uri())
            try:
                page.wait_for_function(
                    "[...document.querySelectorAll('.chart')].every("
                    "c => c.dataset.rendered === 'true' || c.textContent.includes('failed'))",
                    timeout=timeout_ms,
                )
            except PlaywrightTimeout:
                out.timed_out = True  # the caller's assertions say which charts are missing
            out.charts = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('.chart')].map(c => [
                    c.id, {rendered: c.dataset.rendered === 'true',
                           svg: c.querySelectorAll('svg').length,
                           marks: c.querySelectorAll('svg path, svg rect').length,
                           title: c.closest('.card')?.dataset.title,
                           text: c.textContent.slice(0, 200),
                           labels: [...c.querySelectorAll('svg text')]
                                     .map(t => t.textContent)}]))"""
            )
            out.headings = page.evaluate(
                "() => [...document.querySelectorAll('h1, h2')].map(h => h.textContent)"
            )
            if hover_rows_of:
                out.tooltips = _row_tooltips(page, hover_rows_of)
            out.pwned = page.evaluate("() => window.__pwned ?? null")
            out.scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return out


def _row_tooltips(page: Page, title: str) -> list[dict]:
    """Point at the first cell of each row of the card titled `title` (a heat map) and read the
    tooltip the reader sees: its fields, and how many elements (markup a label smuggled in
    would make some) it holds."""
    rows = page.evaluate(
        """(title) => {
            const card = [...document.querySelectorAll('.card')]
                .find(c => c.dataset.title === title);
            const first = new Map();  // row (its middle, px) -> its leftmost cell
            for (const cell of card ? card.querySelectorAll('svg .mark-rect.role-mark path')
                                    : []) {
                const r = cell.getBoundingClientRect();
                const y = Math.round(r.top + r.height / 2);
                if (r.width > 0 && (!first.has(y) || r.left < first.get(y).r.left))
                    first.set(y, {cell, r});
            }
            [...first.values()].forEach(({cell}, i) => cell.setAttribute('data-probe', i));
            return first.size;
        }""",
        title,
    )
    tips = []
    for i in range(rows):
        page.locator(f'[data-probe="{i}"]').hover()  # scrolled into view first
        page.wait_for_selector("#vg-tooltip-element.visible", timeout=5_000)
        tips.append(
            page.evaluate(
                """() => {
                    const tip = document.getElementById('vg-tooltip-element');
                    const fields = Object.fromEntries([...tip.querySelectorAll('tr')].map(
                        tr => [tr.querySelector('.key')?.textContent,
                               tr.querySelector('.value')?.textContent]));
                    return {fields, elements: tip.querySelectorAll(
                        'img, script, iframe, b, svg, a').length};
                }"""
            )
        )
    return tips
