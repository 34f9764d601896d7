"""The built HTML book in a real browser: Debian's Chromium, headless, driven by Playwright.

`make book` builds _build/html; a http.server thread serves it on 127.0.0.1 and Chromium
crawls every internal link from the book's root page, recording console errors, failed
requests, broken links and anchors, images and math on every page. The tests check that
record, then use the pages as a reader would: each chapter's slider animations, the download
button (it must hand out the student notebook of chapters/) and the JupyterHub launch link.

The book must work offline: every request for a host other than localhost is recorded and
aborted, and a test requires there be none. A screenshot of the first chapter is kept in
_build/artifacts/. Without Chromium (or Playwright) these tests fail in CI (CI=true) and skip
elsewhere; without a built book they fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urldefrag, urlsplit

import nbformat
import pytest
import yaml

from autograder.course import CHAPTERS, REPO, assignments

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HTML = REPO / "_build" / "html"
ARTIFACTS = REPO / "_build" / "artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: Text a reader should never see outside code: TeX that MathJax did not typeset.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\[A-Za-z]{2,}|\$[^\s$][^$\n]*\$")
#: How long one page may take to load and typeset, in ms.
PAGE_TIMEOUT = 60_000


def require(condition: bool, reason: str) -> None:
    """Skip for lack of a tool on a developer's machine; fail in CI, which must have it."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI must install it: see .ci/run)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright (never a browser Playwright downloads)."""
    require(CHROMIUM.exists(), f"{CHROMIUM} not found (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (requirements.txt)")
        raise
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


class Traffic:
    """Everything a browser context asked for that a self-contained page must not need.

    Requests for other hosts are recorded and aborted, so a test never depends on (or
    reaches) the network; failures and error statuses of local requests are recorded too.
    """

    def __init__(self, context: Any) -> None:
        self.external: list[str] = []
        self.failed: list[str] = []
        context.route("**/*", self._route)
        context.on("response", self._response)
        context.on("requestfailed", self._request_failed)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.external.append(url)
            route.abort("blockedbyclient")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def _request_failed(self, request: Any) -> None:
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            self.failed.append(f"{request.failure} {request.url}")


def watch_console(page: Any) -> list[str]:
    """Console errors and uncaught exceptions of ``page``, as they happen."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return errors


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free localhost port; yields the base URL (ending in /)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- the crawl -------------------------------------------------------------------------------

_PAGE_FACTS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = await Promise.all([...document.images].map(async (img) => {
    img.loading = "eager";
    try { await img.decode(); } catch (e) {}
    return [img.currentSrc || img.src || img.outerHTML.slice(0, 80), img.naturalWidth];
  }));
  const math = [...document.querySelectorAll("span.math, div.math")];
  const text = document.body.cloneNode(true);
  text.querySelectorAll("pre, code, script, style, mjx-container, .math, textarea")
      .forEach((e) => e.remove());
  return {
    images,
    math: math.length,
    typeset: math.filter((e) => e.querySelector("mjx-container")).length,
    mathErrors: [...document.querySelectorAll("mjx-merror, [data-mjx-error]")]
        .map((e) => e.getAttribute("data-mjx-error") || e.textContent),
    text: text.textContent,
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    ids: [...document.querySelectorAll("[id], a[name]")].map((e) => e.id || e.name),
    mathjax: !!(window.MathJax && MathJax.version),
  };
}"""


@dataclass
class PageRecord:
    url: str
    status: int
    console: list[str]
    facts: dict[str, Any]


@dataclass
class Crawl:
    base: str
    pages: dict[str, PageRecord] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)  # non-HTML target -> HTTP status
    anchors: dict[str, set[str]] = field(default_factory=dict)  # page -> #fragments linked
    linked_from: dict[str, str] = field(default_factory=dict)
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def name(self, url: str) -> str:
        return url.removeprefix(self.base)


def _is_page(url: str) -> bool:
    return url.endswith((".html", "/"))


@pytest.fixture(scope="module")
def book() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail(f"no book in {HTML}: run `make book` first", pytrace=False)
    return HTML


@pytest.fixture(scope="module")
def browser(book: Path) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def site(book: Path) -> Iterator[str]:
    with serve(book) as base:
        yield base


def root_page() -> str:
    return yaml.safe_load((REPO / "_toc.yml").read_text())["root"] + ".html"


@pytest.fixture(scope="module")
def crawl(browser: Any, site: str) -> Crawl:
    """Every page reachable from the root page through internal links, visited once."""
    result = Crawl(site)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    traffic = Traffic(context)
    queue = [site + root_page()]
    while queue:
        url = queue.pop(0)
        if url in result.pages:
            continue
        page = context.new_page()
        console = watch_console(page)
        response = page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT)
        facts = page.evaluate(_PAGE_FACTS)
        page.close()
        result.pages[url] = PageRecord(url, response.status, console, facts)
        for link in facts["links"]:
            target, fragment = urldefrag(link)
            if not target.startswith(site):
                continue
            result.linked_from.setdefault(target, url)
            if fragment:
                result.anchors.setdefault(target, set()).add(fragment)
            if _is_page(target):
                queue.append(target)
            elif target not in result.other:
                result.other[target] = context.request.get(target).status
    context.close()
    result.external, result.failed = traffic.external, traffic.failed
    return result


def test_crawl_reaches_the_pages_of_the_book(crawl: Crawl) -> None:
    """The crawl visited the root page and a page for every chapter (sanity of the crawl)."""
    names = {crawl.name(url) for url in crawl.pages}
    assert root_page() in names
    assert {f"chapters/{a}.html" for a in assignments()} <= names, sorted(names)


def test_pages_load_without_console_errors(crawl: Crawl) -> None:
    """No page logs a console error or throws an uncaught exception while it loads."""
    errors = {crawl.name(p.url): p.console for p in crawl.pages.values() if p.console}
    assert errors == {}


def test_book_makes_no_request_to_another_host(crawl: Crawl) -> None:
    """The book is self-contained: loading every page requests nothing but localhost."""
    assert crawl.external == []


#: An asset the page itself would load from another host (links a reader follows are fine).
_EXTERNAL_ASSET = re.compile(
    r"""<(?:script|img|iframe|source|embed|video|audio)\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:https?:)?//"""
    r"""|unpkg\.com|cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com|fonts\.googleapis\.com""",
    re.IGNORECASE,
)


def test_no_page_references_an_asset_on_another_host(book: Path) -> None:
    """No built page names a script, stylesheet, font or image on another host, not even
    one loaded only on demand (thebe's CDN bundle, the ipywidgets embed scripts)."""
    found = {
        page.relative_to(book).as_posix(): sorted(set(_EXTERNAL_ASSET.findall(page.read_text())))
        for page in book.rglob("*.html")
    }
    assert {page: hits for page, hits in found.items() if hits} == {}
    assert len(found) > len(assignments())


def test_every_local_request_succeeds(crawl: Crawl) -> None:
    """Every script, stylesheet, font and image the pages load is in the build (no 404)."""
    assert crawl.failed == []


def test_no_internal_link_is_broken(crawl: Crawl) -> None:
    """Every internal href resolves: pages and files exist, and #anchors exist on their page."""
    statuses = crawl.other | {url: record.status for url, record in crawl.pages.items()}
    broken = [
        f"{crawl.name(target)} ({status}, linked from {crawl.linked_from.get(target, '-')})"
        for target, status in statuses.items()
        if status != 200
    ]
    for target, fragments in crawl.anchors.items():
        record = crawl.pages.get(target)
        if record is None:
            continue
        ids = set(record.facts["ids"])
        broken += [f"{crawl.name(target)}#{f}" for f in sorted(fragments - ids)]
    assert broken == []


def test_every_image_loads(crawl: Crawl) -> None:
    """Every <img> on every page has loaded, with a non-zero natural width."""
    images = [
        (crawl.name(p.url), src, w) for p in crawl.pages.values() for src, w in p.facts["images"]
    ]
    assert images, "no image anywhere in the book"
    assert [(page, src[:120]) for page, src, width in images if width <= 0] == []


def test_math_is_typeset_and_no_raw_tex_is_left(crawl: Crawl) -> None:
    """Every math element holds MathJax output without errors; no page shows raw TeX."""
    problems = {}
    for record in crawl.pages.values():
        facts, name = record.facts, crawl.name(record.url)
        if facts["math"] and not facts["mathjax"]:
            problems[name] = "has math but MathJax did not load"
        elif facts["typeset"] != facts["math"]:
            problems[name] = f"{facts['typeset']} of {facts['math']} math elements typeset"
        elif facts["mathErrors"]:
            problems[name] = f"TeX errors: {facts['mathErrors']}"
        elif raw := RAW_TEX.findall(facts["text"]):
            problems[name] = f"raw TeX in the text: {raw[:5]}"
    assert problems == {}


def test_mathjax_typesets_offline_from_the_book(browser: Any, site: str) -> None:
    """The book's own MathJax (in _static) typesets TeX, fonts included, with no other host."""
    context = browser.new_context()
    traffic = Traffic(context)
    probe = site + "__mathjax_probe__.html"
    body = (
        "<!doctype html><html><body><p>\\(\\boldsymbol{w}_{k+1} = w_k - \\eta\\,\\nabla L(w_k)\\)"
        '</p><script defer src="_static/mathjax/tex-mml-chtml.js"></script></body></html>'
    )
    context.route(probe, lambda route: route.fulfill(body=body, content_type="text/html"))
    page = context.new_page()
    console = watch_console(page)
    page.goto(probe, wait_until="load")
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("MathJax.startup.promise")
    page.evaluate("document.fonts.ready.then(() => true)")
    rendered = page.locator("mjx-container").count()
    fonts = page.evaluate(
        "[...document.fonts].filter((f) => f.family.includes('MJX') && f.status === 'loaded')"
        ".map((f) => f.family)"
    )
    boldsymbol = page.locator("mjx-container mjx-mi.mjx-b, mjx-container [class*=TEX-B]").count()
    context.close()
    assert rendered == 1
    assert fonts, "no MathJax font loaded"
    assert boldsymbol, "\\boldsymbol (an autoloaded TeX extension) did not render"
    assert console == []
    assert traffic.external == [] and traffic.failed == []


def test_home_page_redirects_to_the_root_page(browser: Any, site: str) -> None:
    """index.html (what a web server shows first) leads to the book's root page."""
    page = browser.new_page()
    page.goto(site + "index.html")
    page.wait_for_url(site + root_page())
    assert page.title()
    page.close()


def test_navigation_reaches_every_chapter_in_order(browser: Any, site: str) -> None:
    """The sidebar lists every chapter, and the "next" buttons walk through them in order."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(site + root_page())
    sidebar = page.locator("nav.bd-docs-nav a.reference").evaluate_all(
        "(links) => links.map((a) => a.href)"
    )
    chapters = [site + f"chapters/{a}.html" for a in assignments()]
    assert [url for url in sidebar if url in chapters] == chapters
    walked = []
    while (following := page.locator("a.right-next")).count():
        following.click()
        page.wait_for_load_state("load")
        walked.append(page.url)
    page.close()
    assert [url for url in walked if "/chapters/" in url] == chapters


# --- what a reader does on a chapter page ----------------------------------------------------


def explorer_outputs(assignment: str) -> int:
    """How many Explorer figures (widget view + static frames) the book's outputs of
    ``assignment`` hold: its entry in the execution cache the book is built from."""
    from jupyter_cache import get_cache

    from autograder.build import BOOK_CACHE

    cache = get_cache(BOOK_CACHE)
    chapter = nbformat.read(CHAPTERS / f"{assignment}.ipynb", as_version=4)
    try:
        record = cache.match_cache_notebook(chapter)
    except KeyError:
        pytest.fail(f"the book was not built from chapters/{assignment}.ipynb: run `make book`")
    notebook = cache.get_cache_bundle(record.pk).nb
    return sum(
        1
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if WIDGET_MIME in output.get("data", {}) and "text/html" in output.get("data", {})
    )


@pytest.fixture
def chapter_page(browser: Any, site: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    traffic = Traffic(context)
    page = context.new_page()
    page.console_errors = watch_console(page)
    yield page
    context.close()
    assert traffic.external == []


@pytest.mark.parametrize("assignment", assignments())
def test_slider_animations_change_the_figure(chapter_page: Any, site: str, assignment) -> None:
    """Each interactive figure shows its frames; moving its slider changes the image."""
    page = chapter_page
    page.goto(site + f"chapters/{assignment}.html", wait_until="load")
    players = page.locator("div.animation")
    assert players.count() == explorer_outputs(assignment)
    for index in range(players.count()):
        player = players.nth(index)
        player.scroll_into_view_if_needed()
        image, slider = player.locator("img"), player.locator("input[type=range]")
        first = image.get_attribute("src")
        assert first and first.startswith("data:image/png;base64,")
        last_frame = slider.get_attribute("max")
        assert int(last_frame) >= 1, "a slider with a single frame"
        box = slider.bounding_box()
        page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        assert slider.input_value() == last_frame
        assert image.get_attribute("src") not in (first, None)
        slider.focus()
        page.keyboard.press("Home")
        assert slider.input_value() == "0"
        assert image.get_attribute("src") == first
    if players.count():
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        players.first.screenshot(path=ARTIFACTS / f"{assignment}-slider.png")
    assert page.console_errors == []


def test_download_button_gives_the_student_notebook(chapter_page: Any, site: str) -> None:
    """The header's .ipynb download is chapters/NN.ipynb itself: stubs, no solutions."""
    for assignment in assignments():
        page = chapter_page
        page.goto(site + f"chapters/{assignment}.html", wait_until="load")
        page.locator(".dropdown-download-buttons > button").click()
        link = page.locator(".dropdown-download-buttons a.btn-download-source-button")
        assert link.inner_text().strip() == ".ipynb"
        with page.context.expect_event("download") as download_info:
            link.click()
        path = download_info.value.path()
        text = Path(path).read_text()
        committed = json.loads((CHAPTERS / f"{assignment}.ipynb").read_text())
        assert json.loads(text) == committed, f"{assignment}: not chapters/ (stale book?)"
        for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "autograder"):
            assert marker not in text
        assert "raise NotImplementedError" in text


def test_launch_button_opens_the_chapter_on_the_jupyterhub(chapter_page: Any, site: str) -> None:
    """The rocket menu's JupyterHub link asks the configured hub to nbgitpuller-clone the
    repository and open the chapter's notebook in JupyterLab."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    hub = config["launch_buttons"]["jupyterhub_url"].rstrip("/")
    repository = config["repository"]
    assert hub, "launch_buttons.jupyterhub_url is empty: no launch button"
    opened: list[str] = []

    def fake_hub(route: Any) -> None:
        opened.append(route.request.url)
        route.fulfill(body="<title>hub</title>", content_type="text/html")

    page = chapter_page
    page.context.route(hub + "/**", fake_hub)
    assignment = assignments()[0]
    page.goto(site + f"chapters/{assignment}.html", wait_until="load")
    page.locator(".dropdown-launch-buttons > button").click()
    link = page.locator(".dropdown-launch-buttons a", has_text="JupyterHub")
    with page.context.expect_page() as new_tab:
        link.click()
    new_tab.value.wait_for_load_state()
    assert len(opened) == 1
    url = urlsplit(opened[0])
    assert f"{url.scheme}://{url.netloc}" == hub
    assert url.path == urlsplit(hub).path + "/hub/user-redirect/git-pull"
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    repo_name = repository["url"].rstrip("/").rsplit("/", 1)[-1]
    assert query == {
        "repo": repository["url"],
        "branch": repository["branch"],
        "urlpath": f"lab/tree/{repo_name}/chapters/{assignment}.ipynb",
    }


def test_screenshot_of_a_chapter_is_kept(chapter_page: Any, site: str) -> None:
    """A screenshot of the first chapter page is written to _build/artifacts/ for review."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{assignments()[0]}.png"
    target.unlink(missing_ok=True)
    page = chapter_page
    page.goto(site + f"chapters/{assignments()[0]}.html", wait_until="load")
    page.evaluate("window.MathJax ? MathJax.startup.promise.then(() => 1) : 1")
    page.screenshot(path=target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 10_000
