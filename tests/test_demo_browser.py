"""End to end: the demo page in headless Debian chromium (Playwright, never a downloaded browser).

The test starts the server, loads the page, moves the alpha slider with the keyboard (every
step is a new run that cancels the previous one), waits for the three answers and checks them,
their p(wrong answer) and the chart against the same computation done directly through the
library (``steered`` + ``generate_replies`` / ``score_choices``). It saves a screenshot (to
``INTERP_DEMO_SCREENSHOT`` when set, else beside the test's temporary files).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (pip install playwright; never `playwright install`)",
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="/usr/bin/chromium is missing (apt-get install chromium)"
)

STEPS = 10  # ArrowRight presses: 10 x 0.05 -> alpha 0.5
MAX_NEW_TOKENS = 24


def lively_tiny():
    from interp.tiny_models import tiny_model

    loaded = tiny_model("llama", n_layers=3)
    with torch.no_grad():
        for name, p in loaded.hf_model.named_parameters():
            if "norm" not in name:
                p.mul_(8.0)
    return loaded


@pytest.fixture(
    scope="module", params=["tiny", pytest.param("embedded", marks=pytest.mark.embedded)]
)
def served(request, tmp_path_factory):
    from interp.demo import DemoSession
    from interp.demo.catalog import persona_entry
    from interp.demo.server import DemoServer
    from interp.hooks import get_backend

    loaded = lively_tiny() if request.param == "tiny" else request.getfixturevalue("embedded")
    backend = get_backend(loaded, "torch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERP_ARTIFACTS", str(tmp_path_factory.mktemp("artifacts")))
        entry = persona_entry(backend, n_triples=4)
    session = DemoSession(backend, [entry], max_new_tokens=MAX_NEW_TOKENS)
    server = DemoServer(session, "127.0.0.1", 0)
    server.serve_in_thread()
    yield request.param, server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def direct(session, req):
    """The same three results computed straight through the library, one variant at a time."""
    from interp.generate import SamplingConfig, generate_replies
    from interp.scoring import ChoicePrompt, score_choices
    from interp.steer import steered

    built = session.check(req)
    out = {}
    for variant, ivs in session.interventions(req).items():
        with steered(session.backend, ivs, session.norms):
            text = generate_replies(
                session.backend,
                [built.conversation],
                SamplingConfig(max_new_tokens=MAX_NEW_TOKENS, temperature=0),
            )[0]
        with steered(session.backend, ivs, session.norms):
            p = score_choices(
                session.backend, [ChoicePrompt(built.conversation, built.candidates)]
            ).choice_probs()[0, 1]
        out[variant] = (text, float(p))
    return out


def test_page_moves_slider_and_matches_library(served, browser, tmp_path):
    from interp.demo import DemoRequest
    from interp.demo.grades import grade_reply

    kind, server = served
    session = server.session
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    page.wait_for_selector("body[data-state=done]", timeout=120_000)
    assert page.locator("#preset").input_value() == "gk-001"

    # an invalid input gets an inline message, and the page recovers
    page.select_option("#preset", "")
    page.fill("#question", "")
    page.wait_for_selector("body[data-state=invalid]", timeout=30_000)
    assert (
        "question" in page.locator("#message").inner_text()
        and page.locator("#question.invalid").count() == 1
    )
    page.select_option("#preset", "gk-001")
    page.wait_for_selector("body[data-state=done]", timeout=120_000)
    assert page.locator("#message").is_hidden()

    # move the slider step by step: each change starts a run that cancels the previous one
    page.focus("#alpha")
    for _ in range(STEPS):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector('body[data-state=done][data-done-alpha="0.5"]', timeout=120_000)
    assert page.locator("#alpha-value").inner_text() == "0.50"

    layer = int(page.locator("#layer").input_value())
    req = DemoRequest(
        item_id="gk-001",
        wrong="London",
        sad=True,
        belief=True,
        direction=page.locator("#direction").input_value(),
        layer=layer,
        alpha=0.5,
    )
    expected = direct(session, req)
    built = session.check(req)
    for variant, (text, p) in expected.items():
        assert page.locator(f"#text-{variant}").text_content() == text, variant
        assert page.locator(f"#p-{variant}").inner_text() == f"{p:.3f}", variant
        grade = grade_reply(built, text)  # the offline grade of the reply, beside p(wrong)
        assert grade is not None
        assert page.locator(f"#grade-{variant}").inner_text() == grade.text(), variant
        assert page.locator(f"#grade-{variant}").get_attribute("data-label") == grade.label
    assert page.locator("#prompt").inner_text().strip().endswith("I think the answer is London.")
    assert "steered: +0.50" in page.locator("#label-steered").inner_text()
    # the chart holds the steered p(wrong) at 0.5 (and the start at 0) plus the two reference lines
    xs = page.evaluate("document.getElementById('chart').data[0].x")
    ys = page.evaluate("document.getElementById('chart').data[0].y")
    assert (
        0.5 in xs
        and 0 in xs
        and ys[xs.index(0.5)] == pytest.approx(expected["steered"][1], abs=1e-9)
    )
    assert page.evaluate("document.getElementById('chart').data.length") == 3

    page.click("#theme")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.click("#theme")
    shot = tmp_path / f"demo-{kind}.png"
    page.screenshot(path=str(shot), full_page=True)
    target = os.environ.get("INTERP_DEMO_SCREENSHOT")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)
    assert shot.stat().st_size > 10_000
    assert not errors, errors
    page.close()
