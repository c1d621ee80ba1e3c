"""Open a page from disk in Debian's headless Chromium (driven by Playwright, which downloads no
browser here) with the network switched off, and report what a person would see."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import sync_playwright

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


def open_page(
    path: Path, screenshot: Path | None = None, width: int = 1200, timeout_ms: int = 30_000
) -> Rendered:
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
            page.wait_for_function(
                "[...document.querySelectorAll('.chart')].every("
                "c => c.dataset.rendered === 'true' || c.textContent.includes('failed'))",
                timeout=timeout_ms,
            )
            out.charts = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('.chart')].map(c => [
                    c.id, {rendered: c.dataset.rendered === 'true',
                           svg: c.querySelectorAll('svg').length,
                           marks: c.querySelectorAll('svg path, svg rect').length,
                           title: c.closest('.card').dataset.title,
                           text: c.textContent.slice(0, 200)}]))"""
            )
            out.scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return out
