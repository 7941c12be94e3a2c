"""Fixtures for the browser test of the rendered book: a local HTTP server for the built HTML,
Debian's Chromium driven by Playwright, and a per-page report printed at the end of the run.

Not part of the unit run: pyproject.toml keeps tests/browser out of `pytest tests/`
(norecursedirs); run it with `make test-browser` (after `make test-html`) or
`pytest tests/browser`.

Environment:
- TLR_HTML_DIR: the built HTML tree (default: _build/test/_build/html, what `make test-html`
  writes).
- TLR_CHROMIUM: the Chromium binary (default: `chromium` on PATH; `apt-get install chromium`).
- TLR_REQUIRE_BROWSER=1: fail instead of skipping when Chromium is missing or cannot start.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HTML_DIR = ROOT / "_build" / "test" / "_build" / "html"

REPORT_KEY = pytest.StashKey[list]()


def html_dir() -> Path:
    return Path(os.environ.get("TLR_HTML_DIR") or DEFAULT_HTML_DIR).resolve()


def _skip_or_fail(reason: str):
    if os.environ.get("TLR_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (TLR_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def pages(root: Path) -> list[str]:
    """Every page of the book: the .html files outside Sphinx's _static/_sources/_images."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(root).parts))


def pytest_generate_tests(metafunc):
    """One test per page of the built book; one clear skip if the book is not built."""
    if "page" not in metafunc.fixturenames:
        return
    root = html_dir()
    found = pages(root) if root.is_dir() else []
    if found:
        metafunc.parametrize("page", found)
    else:
        reason = (f"no built book at {root}: run `make test-html` first "
                  "(or set TLR_HTML_DIR to a built HTML tree)")
        metafunc.parametrize("page", [pytest.param(None, marks=pytest.mark.skip(reason=reason),
                                                   id="no-html")])


@pytest.fixture(scope="session")
def html_root() -> Path:
    return html_dir()


@pytest.fixture(scope="session")
def server_url():
    """Serve the HTML tree on 127.0.0.1 at a free port (like a real web host, not file://)."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir()))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from the system. Skips (with the reason) if it is absent or cannot
    start; the network is cut at the resolver, so only the local server can be reached."""
    exe = os.environ.get("TLR_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not exe:
        _skip_or_fail("Chromium not found (install Debian's: `apt-get install -y chromium`, "
                      "or set TLR_CHROMIUM to a Chromium binary)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(
            executable_path=exe,
            # No DNS: any host name fails to resolve (127.0.0.1 needs none).
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
    except Exception as exc:  # any launch failure: skip, with its reason
        pw.stop()
        _skip_or_fail(f"Chromium at {exe} could not start: {str(exc).splitlines()[0]}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="session")
def browser_report(request) -> list:
    return request.config.stash.setdefault(REPORT_KEY, [])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = config.stash.get(REPORT_KEY, [])
    if not rows:
        return
    tr = terminalreporter
    tr.section("rendered book (Chromium, offline)")
    tr.write_line(f"HTML: {html_dir()}")
    tr.write_line(f"{'page':38} {'formulas':>9} {'images':>7} {'players':>8}  colab  problems")
    for r in rows:
        tr.write_line(
            f"{r['page']:38} {r['formulas']:>9} {r['images']:>7} {r['players']:>8}  "
            f"{r['colab']:5}  {len(r['problems']) or '-'}")
    tolerated = sorted({t for r in rows for t in r["tolerated"]})
    n_bad = sum(1 for r in rows if r["problems"])
    tr.write_line(
        f"{len(rows)} pages loaded; {sum(r['formulas'] for r in rows)} formulas typeset, "
        f"{sum(r['images'] for r in rows)} images loaded, "
        f"{sum(r['players'] for r in rows)} animation players, "
        f"{sum(r['colab'] == 'ok' for r in rows)} Colab buttons checked; "
        f"{n_bad} page(s) with problems")
    tr.write_line("checks per page: no console errors or uncaught exceptions, no failed or "
                  "external requests, every formula typeset by the local MathJax (no raw TeX, "
                  "no MathJax errors, no failed fonts), every <img> loaded, the matplotlib "
                  "players of the notebook present and working, the Colab launch button")
    for t in tolerated:
        tr.write_line(f"tolerated (known, third-party): {t}")
