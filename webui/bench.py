"""The web UI benchmark: time from "send" to the processed audio being playable (``app.py --bench``).

Runs the app in this process on a free localhost port and drives it with the system Chromium
(through Playwright's bundled driver; no browser is downloaded), or with gradio_client when
Chromium is missing.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

from knowledge.config import data_dir
from webui.chat import DEMO_TRACK, SenseApp
from webui.layout import HEADLINE_REQUEST
from webui.server import launch, load_runtime

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
#: The processed ``<audio>`` element has loaded its file (JS predicate for ``page.wait_for_function``).
_PLAYABLE_JS = """() => {
    const a = document.querySelector('#sense-processed audio');
    return !!(a && a.currentSrc && a.readyState >= 1 && a.duration > 0);
}"""
_PLAY_MUTED_JS = """async () => {
    const a = document.querySelector('#sense-processed audio');
    a.muted = true; await a.play(); a.pause();
}"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def benchmark(runs: int = 3, *, clip_s: float = 30.0, request: str = HEADLINE_REQUEST, use_llm: bool = False,
              model: str | None = None, browser: bool | None = None) -> dict:
    """Time from "send" to the processed audio being playable, for a ``clip_s`` excerpt of Vibe Ace.

    Each run is a fresh browser page (a new session, so no follow-up): upload the clip, type the
    request, click Send, and stop the clock when the processed ``<audio>`` element has loaded the
    new file and ``play()`` resolved (muted). Without Chromium (``/usr/bin/chromium``) or with
    ``browser=False`` the clock stops when gradio_client has the processed file instead.
    One warm-up run is not counted.

    Returns:
        ``{"runs_s": [...], "median_s", "warmup_s", "clip_s", "planner", "via", "request"}`` (seconds);
        also printed.
    Raises:
        knowledge.config.DataMissingError: no demo track; playwright errors when a page times out.
    """
    import soundfile

    browser = Path(CHROMIUM).exists() if browser is None else browser
    rt = load_runtime(no_llm=not use_llm, model=model)
    work = Path(tempfile.mkdtemp(prefix="sense-bench-"))
    samples, rate = soundfile.read(data_dir() / "music" / DEMO_TRACK, dtype="float32", start=10 * 44100,
                                   frames=int(clip_s * 44100))
    clip = work / f"vibe_ace_{clip_s:g}s.wav"
    soundfile.write(clip, samples, rate, subtype="PCM_16")
    app = SenseApp(rt, sessions_root=work / "sessions")
    port = free_port()
    demo = launch(app, port=port, block=False, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        times = (_browser_runs if browser else _client_runs)(url, clip, request, runs + 1)
    finally:
        demo.close()
        shutil.rmtree(work, ignore_errors=True)
    summary = {"runs_s": [round(t, 3) for t in times[1:]], "median_s": round(statistics.median(times[1:]), 3),
               "warmup_s": round(times[0], 3), "clip_s": clip_s, "planner": app.planner,
               "via": "chromium" if browser else "gradio_client", "request": request}
    print(f"app latency (send → processed audio playable, {clip_s:g} s clip, {summary['planner']}, via "
          f"{summary['via']}): median {summary['median_s']:.2f} s over {runs} runs {summary['runs_s']} "
          f"(warm-up {summary['warmup_s']:.2f} s)")
    return summary


def _browser_runs(url: str, clip: Path, request: str, n: int) -> list[float]:
    """``n`` timed turns in fresh Chromium pages: send → processed audio playable, s."""
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(n):
            page = chromium.new_page()
            page.goto(url)
            page.locator("#sense-input input[type=file]").set_input_files(str(clip))
            page.wait_for_function("() => document.querySelector('#sense-chat')?.innerText.includes('🎵')",
                                   timeout=120_000)
            page.fill("#sense-msg textarea", request)
            start = time.perf_counter()
            page.click("#sense-send")
            page.wait_for_function(_PLAYABLE_JS, timeout=300_000, polling=50)
            page.evaluate(_PLAY_MUTED_JS)
            times.append(time.perf_counter() - start)
            page.close()
        chromium.close()
    return times


def _client_runs(url: str, clip: Path, request: str, n: int) -> list[float]:
    """``n`` timed turns through gradio_client (fresh client each): send → processed file on disk, s."""
    from gradio_client import Client, handle_file

    times: list[float] = []
    for _ in range(n):
        client = Client(url, verbose=False)
        start = time.perf_counter()
        result = client.predict(request, handle_file(str(clip)), api_name="/chat")
        assert result[3] and Path(result[3]).exists(), result[0][-1]
        times.append(time.perf_counter() - start)
    return times
