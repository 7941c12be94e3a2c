"""The rendered book as a reader's browser shows it, offline.

Every page of a built HTML tree (see conftest.py: TLR_HTML_DIR, default the output of
`make test-html`) is loaded in headless Chromium from a local HTTP server, with every other
host unreachable, and must show:
- no console errors and no uncaught exceptions (beyond KNOWN_ERRORS, reported as tolerated);
- no failed request and no request off the local server (the book must be self-contained);
- every formula typeset by the book's own MathJax: no raw TeX delimiters left in the text,
  every `.math` element holding an `mjx-container`, no MathJax error, no font that failed;
- every <img> loaded (naturalWidth > 0);
- on chapters whose notebook embeds matplotlib players (`tlr.viz.animate_frames`, i.e.
  `to_jshtml`: a `div.animation` with an image, a slider and buttons), as many working
  players as the notebook has: frames loaded, and "Next frame" advances the slider;
- on every chapter page (a book/NAME.ipynb), the theme's Colab launch button pointing to
  COLAB + book/NAME.ipynb.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLAB = "https://colab.research.google.com/github/tlr-book/tlr/blob/main/"

# Known, harmless third-party defects: tolerated, and listed in the report, never hidden.
KNOWN_ERRORS = {
    "Identifier 'THEBE_JS_URL' has already been declared":
        "Sphinx 7.4 writes sphinx-thebe's inline config <script> twice (None vs '' file name, "
        "sphinx-doc/sphinx#13402, fixed in Sphinx 8.2; Jupyter Book 1 needs Sphinx 7); the "
        "first copy already defines the same constants",
}

# Off-site requests that a page may make (blocked here, as offline): URL -> why tolerated.
# None at present: tlr.viz.animate_frames drops the Font Awesome <link> of matplotlib's player.
KNOWN_EXTERNAL: dict[str, str] = {}

# Raw TeX left in the page text means MathJax did not typeset it.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{")

COLLECT_JS = r"""
async (rawTex) => {
  // Images: nothing lazy, then wait (at most 10 s) for each one to load or fail.
  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000);
  })));
  await document.fonts.ready;

  const root = document.querySelector('main') || document.body;
  const skip = new Set(['pre', 'code', 'script', 'style', 'textarea', 'kbd', 'samp']);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {acceptNode(n) {
    for (let e = n.parentElement; e && e !== root.parentElement; e = e.parentElement) {
      if (skip.has(e.localName) || e.localName.startsWith('mjx-'))
        return NodeFilter.FILTER_REJECT;
    }
    return NodeFilter.FILTER_ACCEPT;
  }});
  const raw = [];
  const re = new RegExp(rawTex, 'g');
  for (let n; (n = walker.nextNode()); ) {
    for (const m of n.data.matchAll(re)) {
      raw.push(n.data.slice(Math.max(0, m.index - 30), m.index + 40).replace(/\s+/g, ' '));
    }
  }
  const math = [...document.querySelectorAll('.math')];
  return {
    raw,
    formulas: math.length,
    untypeset: math.filter(e => !e.querySelector('mjx-container'))
                   .map(e => e.textContent.trim().slice(0, 60)),
    containers: document.querySelectorAll('mjx-container').length,
    mathErrors: [...document.querySelectorAll('mjx-merror')]
                   .map(e => e.getAttribute('data-mjx-error') || e.textContent.slice(0, 60)),
    mathjaxSrc: [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s)),
    badFonts: [...document.fonts].filter(f => f.status === 'error').map(f => f.family),
    images: imgs.map(i => ({src: i.src.slice(0, 100), ok: i.complete && i.naturalWidth > 0})),
    players: [...document.querySelectorAll('div.animation')].map(d => {
      const img = d.querySelector('img');
      const id = img ? img.id.replace('_anim_img', '') : '';
      const anim = window['anim' + id];
      const slider = d.querySelector('input.anim-slider');
      return {
        frames: anim && anim.frames ? anim.frames.length : 0,
        img: !!img && img.complete && img.naturalWidth > 0,
        sliderMax: slider ? Number(slider.max) : -1,
        buttons: d.querySelectorAll('.anim-buttons button').length,
      };
    }),
    colabLinks: [...document.querySelectorAll('a[href*="colab.research.google.com"]')]
                   .map(a => a.href),
    colabButton: [...document.querySelectorAll(
        '.dropdown-launch-buttons a[href*="colab.research.google.com"]')].map(a => a.href),
  };
}
"""


def _notebook(page: str) -> Path | None:
    """book/NAME.html -> book/NAME.ipynb, if that page is a chapter notebook."""
    m = re.fullmatch(r"book/([^/]+)\.html", page)
    nb = ROOT / "book" / f"{m.group(1)}.ipynb" if m else None
    return nb if nb is not None and nb.exists() else None


def _players_in(nb: Path) -> int:
    """The matplotlib to_jshtml players among the notebook's committed outputs."""
    n = 0
    for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html", "")
            n += "".join(html).count('<div class="animation">')
    return n


def _redirect_target(path: Path) -> str | None:
    """The target of a <meta http-equiv="Refresh"> page (JB1's index.html), if any."""
    m = re.search(r'http-equiv="Refresh"\s+content="\d+;\s*url=([^"]+)"',
                  path.read_text(encoding="utf-8", errors="replace")[:2000], re.I)
    return m.group(1) if m else None


def test_page(page, html_root, server_url, browser, browser_report):
    problems: list[str] = []
    tolerated: list[str] = []
    external: list[str] = []
    local = server_url + "/"

    def route(r):
        url = r.request.url
        if url.startswith(local):
            r.continue_()
            return
        if url in KNOWN_EXTERNAL:
            tolerated.append(f"request to {url} (blocked): {KNOWN_EXTERNAL[url]}")
        else:
            external.append(url)
        r.abort()

    def on_error(text, url=""):
        known = [k for k in KNOWN_ERRORS if k in text]
        if known:
            tolerated.append(f"{known[0]}: {KNOWN_ERRORS[known[0]]}")
        elif url in KNOWN_EXTERNAL:
            pass  # the console's echo of a tolerated blocked request (reported above)
        else:
            problems.append(text + (f" ({url})" if url else ""))

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)  # generous: CI shares two cores with other jobs
    context.route("**/*", route)
    tab = context.new_page()
    tab.on("console", lambda m: on_error(f"console.error: {m.text}", m.location.get("url", ""))
           if m.type == "error" else None)
    tab.on("pageerror", lambda e: on_error(f"uncaught exception: {e}"))
    tab.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})")
           if r.url.startswith(local) else None)
    tab.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
           if r.status >= 400 else None)

    shown, info, colab = page, None, "-"
    nb = _notebook(page)
    try:
        tab.goto(local + page, wait_until="load")
        target = _redirect_target(html_root / page)
        if target:
            tab.wait_for_url(local + (Path(page).parent / target).as_posix(), timeout=15000)
            tab.wait_for_load_state("load")
            shown = f"{page} -> {target}"

        if tab.locator(".math").count():
            try:
                tab.wait_for_function("() => window.MathJax && MathJax.startup"
                                      " && MathJax.startup.promise", timeout=30_000)
                tab.evaluate("() => MathJax.startup.promise.then(() => true)")
            except Exception as exc:
                problems.append(f"MathJax never started: {str(exc).splitlines()[0]}")
        if tab.locator("div.animation").count():
            try:  # the player objects are built in a setTimeout after the markup
                tab.wait_for_function(
                    "() => [...document.querySelectorAll('div.animation img')]"
                    ".every(i => window['anim' + i.id.replace('_anim_img', '')])",
                    timeout=10000)
            except Exception:
                problems.append("animation players never initialised (window.animID missing)")

        info = tab.evaluate(COLLECT_JS, RAW_TEX.pattern)

        # Formulas.
        problems += [f"raw TeX in the page text: ...{s}..." for s in info["raw"][:5]]
        if info["untypeset"]:
            problems.append(f"{len(info['untypeset'])} of {info['formulas']} formulas not "
                            f"typeset, e.g. {info['untypeset'][:3]}")
        problems += [f"MathJax error: {e}" for e in info["mathErrors"][:5]]
        problems += [f"font failed to load: {f}" for f in sorted(set(info["badFonts"]))]
        if info["formulas"]:
            if not info["mathjaxSrc"]:
                problems.append("page has formulas but no MathJax <script>")
            problems += [f"MathJax not served by the book: {s}" for s in info["mathjaxSrc"]
                         if not s.startswith(local)]

        # Images.
        bad = [i["src"] for i in info["images"] if not i["ok"]]
        if bad:
            problems.append(f"{len(bad)} of {len(info['images'])} <img> not loaded: {bad[:3]}")

        # Animation players.
        want = _players_in(nb) if nb else 0
        players = info["players"]
        if len(players) != want:
            problems.append(f"{len(players)} animation players on the page, the notebook "
                            f"has {want}")
        for k, p in enumerate(players):
            if p["frames"] < 2 or not p["img"] or p["sliderMax"] != p["frames"] - 1 \
                    or p["buttons"] < 5:
                problems.append(f"animation player {k} incomplete: {p}")
                continue
            player = tab.locator("div.animation").nth(k)
            player.locator('button[title="Next frame"]').click()
            value = player.locator("input.anim-slider").input_value()
            if value != "1":
                problems.append(f"animation player {k}: 'Next frame' left the slider at {value}")

        # Colab launch button.
        for href in info["colabLinks"]:
            if not href.startswith(COLAB) or not (ROOT / href[len(COLAB):]).is_file():
                problems.append(f"Colab link to a notebook not in this repository: {href}")
        if nb:
            expected = COLAB + nb.relative_to(ROOT).as_posix()
            if info["colabButton"] != [expected]:
                problems.append(f"Colab launch button {info['colabButton']}, "
                                f"expected [{expected!r}]")
                colab = "BAD"
            else:
                tab.locator(".dropdown-launch-buttons button.dropdown-toggle").click()
                item = tab.locator(f'.dropdown-launch-buttons a[href="{expected}"]')
                item.wait_for(state="visible", timeout=5000)
                colab = "ok"
    except Exception as exc:  # a page that cannot be driven is a failure, with the reason
        problems.append(f"browser error: {str(exc).splitlines()[0]}")
    finally:
        context.close()

    problems += [f"request off the local server (blocked): {u}" for u in sorted(set(external))]
    browser_report.append({
        "page": shown,
        "formulas": info["formulas"] - len(info["untypeset"]) if info else 0,
        "images": sum(i["ok"] for i in info["images"]) if info else 0,
        "players": len(info["players"]) if info else 0,
        "colab": colab,
        "problems": problems,
        "tolerated": sorted(set(tolerated)),
    })
    assert not problems, f"{shown}:\n  " + "\n  ".join(problems)
