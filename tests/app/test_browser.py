"""The web UI in a real browser (system Chromium through Playwright), against the in-process app.

Skips with a message when /usr/bin/chromium or the playwright package is missing (see conftest).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from knowledge.config import PROJECT_ROOT
from tests.app.conftest import copy_screenshot
from webui.layout import HEADLINE_REQUEST

PROCESSED_READY = """(previous) => {
    const a = document.querySelector('#sense-processed audio');
    return !!(a && a.currentSrc && a.currentSrc !== previous && a.readyState >= 1 && a.duration > 0);
}"""


def processed_src(page) -> str:
    return page.evaluate("() => document.querySelector('#sense-processed audio')?.currentSrc || ''")


def chat_text(page) -> str:
    return page.inner_text("#sense-chat")


def user_messages(page) -> list[str]:
    return [t.strip() for t in page.locator("#sense-chat .message.user").all_inner_texts()]


def upload(page, path: Path, expect: str) -> None:
    """Upload a file into "Your track" and wait for the chat to say something containing ``expect``."""
    page.locator("#sense-input input[type=file]").set_input_files(str(path))
    page.wait_for_function("(words) => document.querySelector('#sense-chat').innerText.includes(words)", arg=expect)


def send(page, text: str) -> str:
    """Type and send a request; returns the processed audio URL shown before, for :func:`wait_processed`."""
    previous = processed_src(page)
    page.fill("#sense-msg textarea", text)
    page.click("#sense-send")
    return previous


def wait_processed(page, previous: str, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(PROCESSED_READY, arg=previous, timeout=timeout_ms)


def downloads_text(page) -> str:
    """The download list's text with each file name in one piece (the page splits off the extension)."""
    return re.sub(r"\n(?=\.)", "", page.inner_text("#sense-downloads"))


def playing(page) -> dict[str, bool]:
    return page.evaluate("""() => Object.fromEntries(['original', 'processed'].map(k =>
        [k, !document.querySelector('#sense-' + k + ' audio').paused]))""")


def test_headline_request_in_the_browser(page_factory, sense_app, excerpt, tmp_path):
    """Upload a real track, send the headline request, hear/see the result, A/B it, rate it 👍."""
    web, _ = sense_app
    page = page_factory()
    upload(page, excerpt, "🎵 vibe_ace_20s.wav (0:20)")
    wait_processed(page, send(page, HEADLINE_REQUEST))

    text = chat_text(page)
    assert "Apple AirPods rendering, less harsh:" in text  # the lead sentence; the details are folded
    assert "How and why" in text
    assert re.search(r"Tool trace: device_transfer → equalize → finalize · \d/\d checks passed", text)
    assert user_messages(page)[-1] == HEADLINE_REQUEST
    page.wait_for_function("() => { const i = document.querySelector('#sense-plot img');"
                           " return !!(i && i.complete && i.naturalWidth >= 800); }")
    page.wait_for_function("() => document.querySelector('#sense-original audio')?.readyState >= 1")
    downloads = downloads_text(page)
    assert "config.txt" in downloads and "ParametricEQ.txt" in downloads and "vibe_ace_20s-sense.wav" in downloads

    # the expandable tool trace in the chat
    page.locator("#sense-chat").get_by_text(re.compile("Tool trace: device_transfer")).click()
    page.wait_for_function("() => document.querySelector('#sense-chat').innerText.includes('loudness matched')")

    # one-click A/B: B starts, then A takes over at the same moment
    page.click("#sense-ab")
    page.wait_for_function("() => !document.querySelector('#sense-processed audio').paused")
    assert "now playing SENSE" in page.inner_text("#sense-ab")
    page.wait_for_timeout(600)
    page.click("#sense-ab")
    page.wait_for_function("() => !document.querySelector('#sense-original audio').paused")
    assert playing(page) == {"original": True, "processed": False}
    times = page.evaluate("() => ['original', 'processed'].map(k => document.querySelector('#sense-' + k + ' audio').currentTime)")
    assert times[0] >= times[1] - 0.05  # A continued from where B was, not from 0
    page.evaluate("() => document.querySelectorAll('audio').forEach(a => a.pause())")

    # 👍 writes the preference store
    page.click("#sense-up")
    page.wait_for_function("() => document.querySelector('#sense-rating').innerText.includes('Saved')")
    record_id = int(re.search(r"#(\d+)", page.inner_text("#sense-rating")).group(1))
    session = next(s for s in web.sessions.values() if s.result and s.result["record_id"] == record_id)
    record = web.rt.prefs.get(session.user, record_id)
    assert record.rating == 1 and record.request == HEADLINE_REQUEST

    page.evaluate("() => { const m = [...document.querySelectorAll('#sense-chat .message.user')].pop();"
                  " if (m) m.scrollIntoView({block: 'start'}); window.scrollTo(0, 0); }")
    shot = tmp_path / "ui-screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    copy_screenshot(shot, PROJECT_ROOT / "docs" / "ui-screenshot.png")
    assert page.external_requests == []  # no web fonts, analytics or CDNs: it works offline


def test_two_browser_sessions_stay_separate(page_factory, sense_app, excerpt):
    """Two browsers at once: each sees only its own history and results; a follow-up in one leaves the
    other alone; no page ever holds a server path."""
    web, _ = sense_app
    one, two = page_factory(), page_factory()
    upload(one, excerpt, "🎵 vibe_ace_20s.wav")
    upload(two, excerpt, "🎵 vibe_ace_20s.wav")
    before_one, before_two = send(one, "less harsh"), send(two, "warmer")  # both queued at once
    wait_processed(one, before_one)
    wait_processed(two, before_two)
    assert user_messages(one)[-1] == "less harsh" and "warmer" not in user_messages(one)
    assert user_messages(two)[-1] == "warmer" and "less harsh" not in user_messages(two)
    assert "Less harsh:" in chat_text(one) and "More warm:" not in chat_text(one)
    assert "More warm:" in chat_text(two) and "Less harsh:" not in chat_text(two)
    assert processed_src(one) != processed_src(two)

    # a quick reply in one goes further there only
    two_messages = len(user_messages(two))
    previous = processed_src(one)
    one.click("#sense-quick-more")
    wait_processed(one, previous)
    assert user_messages(one)[-1] == "more" and len(user_messages(two)) == two_messages
    lead = one.locator("#sense-chat .message.bot").all_inner_texts()[-3]  # then the folded details and trace
    assert lead.strip().startswith("Less harsh:")
    mine_one = next(s for s in web.sessions.values() if s.history and s.history[-3]["content"] == f"**{lead.strip()}**")
    assert '× 1.5 ("more")' in mine_one.history[-2]["content"]

    # server side: two sessions, two folders, each holding only its own results
    mine = [s for s in web.sessions.values() if s.result and s.result["words"] in ("less harsh", "more warm")
            and str(s.source).endswith("vibe_ace_20s.wav")][-2:]
    assert len({s.folder for s in mine}) == 2 and len({s.user for s in mine}) == 2
    for s in mine:
        assert all(Path(p).is_relative_to(s.folder) for p in (s.result["audio"], s.result["plot"], s.result["input"]))
    for page in (one, two):
        assert str(web.root) not in page.content()


def test_bad_uploads_show_errors_and_the_app_keeps_serving(page_factory, excerpt, tmp_path):
    """A text file renamed .wav, a 0-byte file and an oversize file each get a clear message in the page;
    then a real track is processed as usual."""
    from tests.app.conftest import TEST_MAX_UPLOAD_MB

    renamed = tmp_path / "notes.wav"
    renamed.write_text("Dear diary, this is not audio.\n" * 50)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    oversize = tmp_path / "huge.wav"
    oversize.write_bytes(np.random.default_rng(1).bytes(int((TEST_MAX_UPLOAD_MB + 1) * 1024 * 1024)))
    page = page_factory()
    upload(page, renamed, "I can't read notes.wav as audio")
    upload(page, empty, "empty.wav is empty (0 bytes)")
    page.locator("#sense-input input[type=file]").set_input_files(str(oversize))
    toast = page.get_by_text(re.compile(r"exceed the maximum allowed size of 6(\.0)? Mb"))
    toast.first.wait_for()
    assert "huge.wav" in page.inner_text("body")
    assert "Traceback" not in page.inner_text("body")
    upload(page, excerpt, "🎵 vibe_ace_20s.wav")
    wait_processed(page, send(page, "warmer"))
    assert "More warm:" in chat_text(page)


def test_microphone_recording_is_processed(page_factory):
    """Record from the (fake) microphone, then ask for a change: the recording is what gets processed."""
    page = page_factory()
    page.click("#sense-input button[aria-label='Record audio']")
    page.locator("#sense-input button", has_text="Record").first.click()
    page.wait_for_timeout(2500)
    page.locator("#sense-input button", has_text="Stop").first.click()
    page.wait_for_function("() => /🎵 audio\\.wav \\(0:0[1-9]\\)/.test(document.querySelector('#sense-chat').innerText)")
    wait_processed(page, send(page, "warmer"))
    assert "More warm:" in chat_text(page)
    assert "audio-sense.wav" in downloads_text(page)


def test_one_click_example_plays_a_result(page_factory):
    """A first-time visitor clicks the first example and gets Vibe Ace processed by the headline request."""
    page = page_factory()
    page.locator("#sense-examples button.gallery-item").first.click()
    wait_processed(page, "")
    assert user_messages(page)[-1] == HEADLINE_REQUEST
    assert "Kevin_MacLeod_-_Vibe_Ace" in downloads_text(page)


def test_device_picker_and_my_devices(page_factory, sense_app):
    """Search a device, make it "mine" and "what I listen on"; "Sound like it" sends a turn."""
    web, _ = sense_app
    page = page_factory()
    page.locator("#sense-device-search input, #sense-device-search textarea").first.press_sequentially("airpods pro 2",
                                                                                                       delay=20)
    page.wait_for_function("() => document.querySelector('#sense-device-pick input').value"
                           ".includes('Apple AirPods Pro (2nd generation)')")
    page.click("#sense-device-own")
    page.wait_for_function("() => document.querySelector('#sense-my-devices').innerText"
                           ".includes('My devices: Apple AirPods Pro (2nd generation)')")
    page.click("#sense-device-listen")
    page.wait_for_function("() => document.querySelector('#sense-my-devices').innerText"
                           ".includes('I listen on: Apple AirPods Pro (2nd generation)')")
    session = next(s for s in web.sessions.values() if s.listening == "Apple AirPods Pro (2nd generation)")
    assert web.rt.prefs.owned_devices(session.user) == ["Apple AirPods Pro (2nd generation)"]
    page.click("#sense-device-like")
    page.wait_for_function("() => document.querySelector('#sense-chat').innerText.includes('Now give me an audio file')")
    assert user_messages(page)[-1] == "make this sound like it's on the Apple AirPods Pro (2nd generation)"


def test_pick_variant_b_and_the_next_request_starts_from_it(page_factory, sense_app, excerpt, tmp_path):
    """"warmer" shows variants B/C beside the result; *Use B* makes B the result (the very audio offered as B),
    hides the variants, stores the pick; "a bit more" then scales B."""
    import shutil

    import soundfile as sf

    web, _ = sense_app
    page = page_factory()
    track = shutil.copy(excerpt, tmp_path / "warm_pick.wav")  # a name no other test's session has
    upload(page, track, "🎵 warm_pick.wav")
    wait_processed(page, send(page, "warmer"))
    page.wait_for_selector("#sense-variants", state="visible")
    assert "Other ways people mean" in page.inner_text("#sense-variants")
    s = next(s for s in web.sessions.values() if s.result and Path(s.result["audio"]).name in processed_src(page))
    (letter, label, b_audio), *_ = s.result["variants"]
    assert letter == "B" and label in page.inner_text("#sense-variants")

    previous = processed_src(page)
    page.click("#sense-pick-B")
    wait_processed(page, previous)
    assert user_messages(page)[-1] == "variant B"
    page.wait_for_selector("#sense-variants", state="hidden")
    move = web.engine.conversation(s.thread).settings.adjustments[0]
    assert move.variant.startswith("B:") and move.offset_db
    now, offered = sf.read(s.result["audio"], dtype="float32")[0], sf.read(b_audio, dtype="float32")[0]
    assert np.max(np.abs(now - offered)) < 1e-4
    assert [e.kind for e in web.rt.prefs.evidence(s.user)] == ["pick"]

    wait_processed(page, send(page, "a bit more"))
    after = web.engine.conversation(s.thread).settings.adjustments[0]
    assert after.offset_db == move.offset_db and after.amount == pytest.approx(1.5 * move.amount)
