"""Fixtures for the web UI tests: one in-process SENSE app on a free localhost port, and Chromium.

The app runs the rule-based runtime (``rt_rules``) so a turn takes seconds; its upload limit is
6 MB so the oversize check needs only a 7 MB file. Browser tests use the system Chromium
(``/usr/bin/chromium``, installed by the set-up) through Playwright's bundled driver and skip with
a message when either is missing; no browser is ever downloaded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
TEST_MAX_UPLOAD_MB = 6.0


@pytest.fixture(scope="session")
def sense_app(rt_rules, tmp_path_factory):
    """(SenseApp, base URL) served in this process for the whole test session."""
    from webui.bench import free_port
    from webui.chat import SenseApp
    from webui.server import launch
    from webui.session import Limits

    sessions = tmp_path_factory.mktemp("app-sessions")
    web = SenseApp(rt_rules, limits=Limits(max_upload_mb=TEST_MAX_UPLOAD_MB), sessions_root=sessions)
    port = free_port()
    demo = launch(web, port=port, block=False, quiet=True)
    try:
        yield web, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium through Playwright (skips when either is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's `chromium` package (the set-up script does) "
                    "to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright; "
                    "no browser download is needed: the tests use /usr/bin/chromium)")
    from webui.bench import CHROMIUM_ARGS

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as p:
        # a fake microphone (a beep) stands in for a real one in the recording test
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page_factory(browser, sense_app):
    """New pages, each in its own browser context (= its own Gradio session), closed after the test."""
    _, url = sense_app
    contexts = []

    def new_page():
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, permissions=["microphone"])
        context.set_default_timeout(60_000)
        contexts.append(context)
        page = context.new_page()
        page.external_requests = []  # offline-first: the page must load nothing from other hosts
        page.on("request", lambda r: page.external_requests.append(r.url)
                if r.url.startswith(("http:", "https:", "ws:", "wss:")) and not r.url.startswith(url) else None)
        page.goto(url)
        page.wait_for_selector("#sense-chat .message")
        return page

    yield new_page
    for context in contexts:
        context.close()


def copy_screenshot(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def pytest_collection_modifyitems(config, items):
    """Gradio's queue trips pandas 3 deprecation warnings on every event; they are Gradio's, not ours."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"))
            item.add_marker(pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*"))
