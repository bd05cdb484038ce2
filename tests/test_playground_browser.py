"""The playground page at ``/`` in a real headless browser: Debian's Chromium driven by Playwright.

A live uvicorn server of the tiny model with a decider and a small exact index, on 127.0.0.1:
the page loads, three sentences give a 3x3 similarity matrix and paraphrase decisions, a query
gives hits, a bad input shows the API's error in the page, and nothing reaches the console as an
error (a CSP violation, a 404 for an asset, an uncaught exception would all show there). The
screenshot goes to benchmarks/results/playground.png.

Playwright's own browser download is never used (``executable_path``): CI installs Debian's
``chromium`` (.ci/run). Without it the test is skipped, except under CI (``CI=true``), where a
missing browser fails the test instead of silently skipping it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.app import create_app
from paraxl.serving.index import VectorIndex
from paraxl.serving.service import ParaxlService, ServiceLimits

from .test_http import serving
from .test_service import DOCS, FakeDecider

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "playground.png"
SENTENCES = ["the cat sat on the mat", "le chat sat on the mat", "der hund ran"]
TIMEOUT_MS = 20_000


def _browser_or_skip() -> str:
    found = CHROMIUM if shutil.which(CHROMIUM) else shutil.which("chromium")  # Debian's path, else PATH's
    if found:
        return found
    reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the browser test, not skip it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def base_url(tiny_model_dir: Path) -> Iterator[str]:
    encoder = BiEncoder.load(tiny_model_dir)
    vectors = encoder.encode(DOCS, prompt_name="passage")  # (5, dim)
    index = VectorIndex.build(
        vectors, [f"d{i}" for i in range(len(DOCS))], DOCS, index_type="exact", prompt_name="passage"
    )
    limits = ServiceLimits(max_batch=16, max_text_chars=200, max_k=5)
    service = ParaxlService(encoder, model_name="tiny", decider=FakeDecider(), searcher=index, limits=limits)
    with serving(create_app(service)) as url:
        yield url


def test_the_page_is_self_contained_with_a_strict_policy(base_url: str) -> None:
    response = httpx.get(base_url + "/", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "default-src 'self'"
    assert "http://" not in response.text and "https://" not in response.text  # no CDN, no external fonts
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        served = httpx.get(f"{base_url}/playground/{asset}", timeout=10)
        assert served.status_code == 200 and kind in served.headers["content-type"]
    assert "/" not in httpx.get(base_url + "/openapi.json", timeout=10).json()["paths"]  # not part of the API


@contextmanager
def browser_page(problems: list[str]) -> Iterator[Page]:
    """A page of a fresh headless Chromium; console errors and uncaught exceptions go to ``problems``."""
    executable = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            yield page
        finally:
            browser.close()


def test_the_playground_in_a_headless_browser(base_url: str) -> None:
    problems: list[str] = []
    with browser_page(problems) as page:
        page.goto(base_url + "/")
        page.get_by_text("model tiny", exact=False).wait_for()

        page.get_by_label("Sentences", exact=True).fill("\n".join(SENTENCES))
        page.get_by_role("button", name="Compare").click()
        matrix = page.locator("#matrix table")
        matrix.wait_for()
        assert matrix.locator("tbody tr").count() == 3
        assert matrix.locator("tbody td").count() == 9
        diagonal = matrix.locator("tbody tr").first.locator("td").first.inner_text()
        assert diagonal.strip() == "1.00"  # a sentence is its own paraphrase
        decisions = page.locator("#decisions table tbody tr")
        decisions.first.wait_for()
        assert decisions.count() == 3  # 3 pairs of 3 sentences

        page.get_by_label("Search query", exact=True).fill("the cat on the mat")
        page.get_by_role("button", name="Search").click()
        hits = page.locator("#hits table tbody tr")
        hits.first.wait_for()
        assert hits.count() == 5  # k = 5, the whole index
        ids = hits.locator("td:nth-child(3)").all_inner_texts()
        assert sorted(ids) == [f"d{i}" for i in range(len(DOCS))]

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        assert problems == []

        # an error from the API is shown in the page, not thrown: Chromium itself logs the
        # refused request ("Failed to load resource ... 413"), and that is the only new message
        page.get_by_label("Sentences", exact=True).fill("x" * 300 + "\nshort")
        page.get_by_role("button", name="Compare").click()
        page.locator("#error").get_by_text("characters").wait_for()
    assert len(problems) == 1 and "Failed to load resource" in problems[0] and "413" in problems[0], problems


def test_without_index_or_calibration_the_page_says_so(tiny_model_dir: Path) -> None:
    service = ParaxlService(BiEncoder.load(tiny_model_dir), model_name="tiny")
    problems: list[str] = []
    with serving(create_app(service)) as url, browser_page(problems) as page:
        page.goto(url + "/")
        page.get_by_text("No index is served").wait_for()
        assert page.get_by_label("Search query", exact=True).is_disabled()
        page.get_by_role("button", name="Compare").click()  # the page's own example sentences
        page.locator("#matrix table").wait_for()
        page.get_by_text("no calibration, so it makes no paraphrase decisions").wait_for()
    assert problems == []


def test_with_an_api_key_the_page_asks_for_it_and_then_works(tiny_model_dir: Path) -> None:
    service = ParaxlService(BiEncoder.load(tiny_model_dir), model_name="tiny")
    problems: list[str] = []
    with serving(create_app(service, api_key="page-key")) as url, browser_page(problems) as page:
        page.goto(url + "/")
        page.get_by_text("model tiny", exact=False).wait_for()  # /health is open
        page.get_by_role("button", name="Compare").click()
        page.locator("#error").get_by_text("needs an API key").wait_for()
        page.get_by_label("API key", exact=True).fill("page-key")
        page.get_by_role("button", name="Use this key").click()
        assert page.locator("#key-form").is_hidden()
        page.get_by_role("button", name="Compare").click()
        page.locator("#matrix table").wait_for()
        assert page.evaluate("sessionStorage.getItem('paraxl-api-key')") == "page-key"
    # Chromium logs the refused request itself; nothing else reached the console
    assert len(problems) == 1 and "401" in problems[0], problems


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_chromium_ci_fails_and_elsewhere_skips(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", str(tmp_path / "chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        _browser_or_skip()


def test_a_cross_encoder_served_alone_fills_the_matrix_from_similarity(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A cross-encoder (no /embed): the matrix holds its score of every ordered pair, as /similarity gives
    them; the decisions come from /paraphrase; search says why it is off."""
    from paraxl.decision.decider import FixedThreshold
    from paraxl.modeling.cross_encoder import open_cross_encoder_scorer
    from paraxl.serving.cross_encoding import SerialPairScorer
    from paraxl.serving.cross_service import CrossEncoderService

    from .test_serve_cross_encoder import save_tiny_cross_encoder

    folder = save_tiny_cross_encoder(tiny_model_dir, tmp_path / "ce")
    scorer = SerialPairScorer(open_cross_encoder_scorer(folder), str(folder), "f" * 64, max_wait=5.0)
    service = CrossEncoderService(scorer, model_name="tiny-ce", decider=FixedThreshold(0.5))
    problems: list[str] = []
    with serving(create_app(service)) as url, browser_page(problems) as page:
        page.goto(url + "/")
        page.get_by_text("a cross-encoder: pairs only", exact=False).wait_for()
        assert page.get_by_label("Search query", exact=True).is_disabled()
        page.get_by_label("Sentences", exact=True).fill("\n".join(SENTENCES))
        page.get_by_role("button", name="Compare").click()
        matrix = page.locator("#matrix table")
        matrix.wait_for()
        shown = [float(cell) for cell in matrix.locator("tbody td").all_inner_texts()]
        pairs = [[first, second] for first in SENTENCES for second in SENTENCES]
        expected = httpx.post(url + "/similarity", json={"pairs": pairs}, timeout=30).json()["scores"]
        assert len(shown) == 9 and all(abs(a - b) <= 0.005 + 1e-9 for a, b in zip(shown, expected, strict=True))
        page.locator("#decisions table tbody tr").first.wait_for()
        assert page.locator("#decisions table tbody tr").count() == 3
    assert problems == []
