"""The web UI's Speaker panel: a running ``sense speaker`` room, seen and changed through its control API.

The panel talks HTTP to the room's service (default ``SENSE_SPEAKER_API`` or http://127.0.0.1:8765),
as a phone app would: it shows what plays, the room's settings and its current curve (plot), and sends
requests ("less boomy"), undo and volume. Nothing here imports the speaker service itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gradio as gr
import httpx

DEFAULT_API = os.environ.get("SENSE_SPEAKER_API", "http://127.0.0.1:8765")
TIMEOUT_S = 120.0


def _call(method: str, url: str, **kwargs) -> dict:
    try:
        reply = httpx.request(method, url, timeout=TIMEOUT_S, **kwargs)
    except httpx.HTTPError as exc:
        raise gr.Error(f"No speaker service at {url.split('/rooms')[0]} ({type(exc).__name__}); start one with "
                       "`sense speaker serve TRACK --room NAME`.") from None
    if reply.status_code != 200:
        raise gr.Error(f"The speaker service said {reply.status_code}: {reply.text[:200]}")
    return reply.json()


def curve_plot(status: dict) -> str:
    """A PNG of the room's total curve (dB vs frequency, log axis); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=110)
    ax.semilogx(status["curve"]["frequency_hz"], status["curve"]["gain_db"], color="#4f46e5", lw=2)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlim=(20, 20000), xlabel="frequency (Hz)", ylabel="gain (dB)",
           title=f"{status['room']}: the filter playing now (volume {status['settings']['volume_db']:+.1f} dB)")
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    path = Path(tempfile.mkdtemp(prefix="sense-speaker-")) / "curve.png"
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def status_markdown(status: dict, said: str | None = None) -> str:
    """What the room plays and how it is set, in Markdown (plus the last answer, if any)."""
    s = status["settings"]
    lines = [f"**{status['room']}** · {'▶ ' + (status['now_playing'] or 'a stream') if status['playing'] else '⏹ nothing playing'}",
             f"{len(s['filters'])} EQ band(s){' · device curve' if s['fir_db'] else ''} · volume {s['volume_db']:+.1f} dB "
             f"(ceiling {s['ceiling_db']:+.1f} dB){' · speaker ' + s['speaker_model'] if s['speaker_model'] else ''} · "
             f"{status['undo_depth']} undo step(s)"]
    if said:
        lines.insert(0, f"🔊 {said}")
    return "\n\n".join(lines)


def refresh(api: str, room: str, said: str | None = None) -> tuple[str, str]:
    """(status Markdown, curve PNG path) of ``room`` at ``api``."""
    status = _call("GET", f"{api.rstrip('/')}/rooms/{room}")
    return status_markdown(status, said), curve_plot(status)


def send(api: str, room: str, text: str) -> tuple[str, str, str]:
    """Send ``text`` to the room; returns (status, plot, cleared textbox)."""
    if not text.strip():
        return (*refresh(api, room), "")
    reply = _call("POST", f"{api.rstrip('/')}/rooms/{room}/request", json={"text": text})
    return (*refresh(api, room, reply["text"]), "")


def undo(api: str, room: str) -> tuple[str, str]:
    """Undo the room's last change."""
    reply = _call("POST", f"{api.rstrip('/')}/rooms/{room}/undo")
    return refresh(api, room, reply["text"])


def panel() -> None:
    """Lay out the Speaker accordion and wire its events (inside a ``gr.Blocks`` context)."""
    with gr.Accordion("🔊 Speaker: a room playing through SENSE (`sense speaker serve`)", open=False,
                      elem_id="sense-speaker"):
        with gr.Row():
            api = gr.Textbox(DEFAULT_API, label="Control API", scale=3, elem_id="sense-speaker-api")
            room = gr.Textbox("default", label="Room", scale=2, elem_id="sense-speaker-room")
        status = gr.Markdown("Press ⟳ to see the room.", elem_id="sense-speaker-status")
        plot = gr.Image(type="filepath", interactive=False, show_label=False, elem_id="sense-speaker-curve", height=260)
        with gr.Row():
            text = gr.Textbox(placeholder="it's too boomy · louder · make it sound like my AirPods", show_label=False,
                              container=False, scale=5, elem_id="sense-speaker-msg")
            go = gr.Button("Send", size="sm", scale=1, elem_id="sense-speaker-send")
            back = gr.Button("↩ undo", size="sm", scale=1, elem_id="sense-speaker-undo")
            again = gr.Button("⟳", size="sm", scale=0, min_width=40, elem_id="sense-speaker-refresh")
    common = dict(api_visibility="private", concurrency_id="speaker", concurrency_limit=2)
    go.click(send, [api, room, text], [status, plot, text], **common)
    text.submit(send, [api, room, text], [status, plot, text], **common)
    back.click(undo, [api, room], [status, plot], **common)
    again.click(refresh, [api, room], [status, plot], **common)
