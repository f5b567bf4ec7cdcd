"""The web UI's page: the Gradio Blocks layout, its events, and the look (header, CSS, theme, A/B switch).

:func:`build` lays out the chat (left) and the result panel (right) and wires every event to a
:class:`webui.chat.SenseApp` handler. Nothing here talks to the agent.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from webui.chat import WELCOME
from webui.speaker import panel as speaker_panel
from webui.session import assistant

HEADLINE_REQUEST = "make this sound like it's on my AirPods, less harsh"
QUICK_REPLIES = (("more", "➕ more"), ("less", "➖ less"), ("undo", "↩ undo"), ("reset", "⟲ reset"))
#: One-click example requests on the demo track: (request, icon).
EXAMPLE_REQUESTS = ((HEADLINE_REQUEST, "🎧 "), ("warmer", "🔥 "), ("less muddy, a bit brighter", "✨ "),
                    ("boost the bass by 4 dB", "🔊 "))


def build(app) -> gr.Blocks:
    """The Blocks app of a :class:`webui.chat.SenseApp` (serve it with :func:`webui.server.launch`).

    Args:
        app: the SenseApp whose handlers the events call.
    Returns:
        The (not yet queued or launched) ``gr.Blocks``.
    """
    with gr.Blocks(title="SENSE · audio assistant", analytics_enabled=False) as demo:
        ui = SimpleNamespace()
        ui.state = gr.State(None, delete_callback=app.forget)
        ui.audio_in = gr.Audio(label="Your track · upload or record", sources=["upload", "microphone"],
                               type="filepath", elem_id="sense-input", render=False,
                               waveform_options=gr.WaveformOptions(show_recording_waveform=True))
        gr.HTML(HEADER_HTML.format(planner=app.planner), elem_id="sense-header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=7, min_width=420):
                _chat_column(app, ui)
            with gr.Column(scale=5, min_width=380):
                _result_column(app, ui)
        _wire_events(app, demo, ui)
    return demo


def _chat_column(app, ui: SimpleNamespace) -> None:
    """The chat, the message box, quick replies, the examples and the plot (components stored on ``ui``)."""
    ui.chatbot = gr.Chatbot(value=[assistant(WELCOME)], height=600, show_label=False, elem_id="sense-chat",
                            feedback_options=None, buttons=["copy"], group_consecutive_messages=False,
                            autoscroll=True)
    with gr.Row(elem_id="sense-compose"):
        ui.msg = gr.Textbox(placeholder="Tell me how it should sound…  (Enter to send)", show_label=False,
                            container=False, scale=8, elem_id="sense-msg", max_lines=4)
        ui.send = gr.Button("Send", variant="primary", scale=1, min_width=90, elem_id="sense-send")
    with gr.Row(elem_id="sense-quick"):
        ui.quick = [gr.Button(label, size="sm", elem_id=f"sense-quick-{word}", min_width=60)
                    for word, label in QUICK_REPLIES]
        ui.new_chat = gr.Button("🗨 new chat", size="sm", elem_id="sense-new-chat", min_width=60)
    ui.examples = _examples(app, ui.audio_in, ui.msg)
    ui.plot = gr.Image(label="What changed",
                       type="filepath", interactive=False, elem_id="sense-plot",
                       buttons=["download", "fullscreen"], height=680)


def _result_column(app, ui: SimpleNamespace) -> None:
    """The upload, A/B players, rating, downloads, devices and trace (components stored on ``ui``)."""
    ui.audio_in.render()
    with gr.Group(elem_id="sense-result"):
        with gr.Row(equal_height=True):
            ui.original = gr.Audio(label="Original", interactive=False, elem_id="sense-original",
                                   waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                                   buttons=["download"], min_width=160)
            ui.processed = gr.Audio(label="SENSE · variant A", interactive=False,
                                    elem_id="sense-processed",
                                    waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                                    buttons=["download"], min_width=160)
        ui.ab = gr.Button("A/B ⇄  switch at the same moment · loudness-matched", elem_id="sense-ab", size="sm")
    _variants_box(ui)
    with gr.Row(elem_id="sense-rate-row", equal_height=True):
        ui.up = gr.Button("👍", elem_id="sense-up", size="sm", min_width=50, scale=0)
        ui.down = gr.Button("👎", elem_id="sense-down", size="sm", min_width=50, scale=0)
        ui.rating = gr.Markdown("", elem_id="sense-rating")
    ui.downloads = gr.File(label="Downloads: audio · EqualizerAPO config.txt · AutoEq ParametricEQ.txt · trace",
                           file_count="multiple", interactive=False, elem_id="sense-downloads")
    with gr.Accordion("🎧 Devices: find one, say you own it, or say what you listen on", open=True,
                      elem_id="sense-devices"):
        ui.search = gr.Textbox(placeholder="airpods pro 2, sony xm4, bose qc35 …", show_label=False,
                               container=False, elem_id="sense-device-search")
        ui.picked = gr.Dropdown(choices=app.device_choices(""), value=None, label="Device",
                                elem_id="sense-device-pick", filterable=True)
        with gr.Row():
            ui.like_btn = gr.Button("Sound like it", size="sm", elem_id="sense-device-like")
            ui.listen_btn = gr.Button("I listen on it", size="sm", elem_id="sense-device-listen")
            ui.own_btn = gr.Button("⭐ My device", size="sm", elem_id="sense-device-own")
        ui.devices_md = gr.Markdown(elem_id="sense-my-devices")
    with gr.Accordion("🔧 Tool trace: plan, checks, measurements", open=False, elem_id="sense-trace-box"):
        ui.trace = gr.JSON(elem_id="sense-trace", show_label=False)
    speaker_panel()


def _variants_box(ui: SimpleNamespace) -> None:
    """Other ways people mean the word (shown when the result has variants): players B and C and the pick buttons."""
    with gr.Group(visible=False, elem_id="sense-variants") as ui.variant_box:
        ui.variants_md = gr.Markdown(elem_id="sense-variants-text")
        with gr.Row(equal_height=True):
            ui.variant_audio = [gr.Audio(label=f"{letter} · variant", interactive=False, elem_id=f"sense-variant-{letter}",
                                         waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                                         min_width=160) for letter in "BC"]
        with gr.Row():
            ui.variant_pick = [gr.Button(text, size="sm", elem_id=f"sense-pick-{letter}", min_width=60)
                               for letter, text in (("A", "Keep A"), ("B", "Use B"), ("C", "Use C"))]


def _wire_events(app, demo: gr.Blocks, ui: SimpleNamespace) -> None:
    """Every event of the page → its SenseApp handler (turns share one queue, ``app.concurrency`` at once)."""
    state, audio_in, msg = ui.state, ui.audio_in, ui.msg
    outputs = [ui.chatbot, msg, audio_in, ui.original, ui.processed, ui.plot, ui.trace, ui.downloads, ui.rating,
               ui.variant_box, ui.variants_md, *ui.variant_audio, ui.variant_pick[2], state]
    turn_args = dict(outputs=outputs, concurrency_id="turn", concurrency_limit=app.concurrency,
                     show_progress="full", show_progress_on=[ui.chatbot])
    ui.send.click(app.turn, [msg, audio_in, state], api_name="chat", **turn_args)
    msg.submit(app.turn, [msg, audio_in, state], api_visibility="private", **turn_args)
    for (word, _), button in zip(QUICK_REPLIES, ui.quick):
        button.click(app.quick(word), [audio_in, state], api_visibility="private", **turn_args)
    ui.new_chat.click(app.new_chat, [state], outputs, api_visibility="private", queue=False)
    for letter, button in zip("ABC", ui.variant_pick):
        button.click(app.pick_variant(letter), [audio_in, state], api_visibility="private", **turn_args)
    audio_in.upload(app.on_upload, [audio_in, state], outputs, api_visibility="private",
                    concurrency_id="turn", concurrency_limit=app.concurrency)
    audio_in.stop_recording(app.on_upload, [audio_in, state], outputs, api_visibility="private",
                            concurrency_id="turn", concurrency_limit=app.concurrency)
    ui.up.click(app.rate_up, [state], [ui.rating, state], api_name="rate_up", concurrency_limit=None)
    ui.down.click(app.rate_down, [state], [ui.rating, state], api_name="rate_down", concurrency_limit=None)
    ui.ab.click(None, js=AB_SWITCH_JS)
    ui.search.input(app.search_devices, [ui.search], [ui.picked], api_visibility="private", concurrency_limit=2,
                    concurrency_id="search", show_progress="hidden", trigger_mode="always_last")
    ui.own_btn.click(_with_request(app.own), [ui.picked, state], [ui.devices_md, state], api_visibility="private",
                     concurrency_limit=None)
    ui.listen_btn.click(_with_request(app.listen_on), [ui.picked, state], [ui.devices_md, state],
                        api_visibility="private", concurrency_limit=None)
    ui.like_btn.click(lambda name: f"make this sound like it's on the {name}" if name else gr.skip(), [ui.picked],
                      [msg], queue=False, api_visibility="private").then(
        app.turn, [msg, audio_in, state], api_visibility="private", **turn_args)
    demo.load(app.on_load, [state], [ui.devices_md, ui.chatbot, state], api_visibility="private")

    if ui.examples is not None:
        ui.examples.load_input_event.then(app.turn, [msg, audio_in, state], api_visibility="private", **turn_args)


def _examples(app, audio_in: gr.Audio, msg: gr.Textbox) -> gr.Examples | None:
    """One-click examples on the bundled-by-reference demo track (Vibe Ace), or None without it."""
    if app.demo_track is None:
        return None
    requests = EXAMPLE_REQUESTS
    return gr.Examples(examples=[[str(app.demo_track), text] for text, _ in requests], inputs=[audio_in, msg],
                       example_labels=[icon + text for text, icon in requests], elem_id="sense-examples",
                       label="One click: \"Vibe Ace\" by Kevin MacLeod (CC BY 3.0) through a request")


def _with_request(fn):
    """``fn(value, session, request)`` as a Gradio handler of two inputs that still receives the request."""
    def handler(value, session, request: gr.Request = None):
        return fn(value, session, request)

    handler.__name__ = fn.__name__
    return handler


HEADER_HTML = """
<div class="sense-header">
  <div class="sense-logo">S</div>
  <div>
    <h1>SENSE <span>· your music, the way you describe it</span></h1>
    <p>Drop a track, say how it should sound (a device, a tone, a dB move); hear A/B, see the numbers.
       Offline: measured FR curves (AutoEq), the Audealize word→EQ prior and your own ratings. Planner: {planner}.</p>
  </div>
</div>
"""

#: The A/B switch: pause the one playing, start the other at the same moment (both files are loudness-matched).
AB_SWITCH_JS = """
() => {
  const a = document.querySelector('#sense-original audio');
  const b = document.querySelector('#sense-processed audio');
  if (!a || !b || !b.currentSrc) { return; }
  const st = window.__senseAB || (window.__senseAB = {active: 'A'});
  const from = !a.paused ? a : (!b.paused ? b : (st.active === 'A' ? a : b));
  const to = from === a ? b : a;
  const t = from.currentTime || 0;
  from.pause();
  try { to.currentTime = isFinite(to.duration) ? Math.min(t, to.duration) : t; } catch (e) {}
  to.play().catch(() => {});
  st.active = to === a ? 'A' : 'B';
  document.querySelector('#sense-original')?.classList.toggle('sense-ab-active', st.active === 'A');
  document.querySelector('#sense-processed')?.classList.toggle('sense-ab-active', st.active === 'B');
  const btn = document.querySelector('#sense-ab');
  if (btn) { btn.textContent = (st.active === 'A' ? 'A/B ⇄  now playing the original' : 'A/B ⇄  now playing SENSE') + ' · loudness-matched'; }
}
"""

CSS = """
.gradio-container { max-width: 1380px !important; margin: 0 auto !important; }
.sense-header { display: flex; gap: 16px; align-items: center; padding: 6px 4px 2px 4px; }
.sense-logo { width: 48px; height: 48px; border-radius: 14px; display: grid; place-items: center; font-weight: 800;
  font-size: 26px; color: white; background: linear-gradient(135deg, #4f46e5, #06b6d4); flex: none; }
.sense-header h1 { margin: 0; font-size: 1.6rem; letter-spacing: -0.01em; }
.sense-header h1 span { font-weight: 400; color: var(--body-text-color-subdued); font-size: 1.05rem; }
.sense-header p { margin: 2px 0 0 0; color: var(--body-text-color-subdued); font-size: 0.92rem; }
#sense-quick button { flex: 0 1 auto; }
#sense-ab { font-weight: 600; }
.sense-ab-active { outline: 2px solid var(--color-accent); outline-offset: -2px; border-radius: 8px; }
#sense-original audio, #sense-processed audio { width: 100%; }
#sense-rating { align-self: center; }
#sense-plot img { margin-top: 34px; max-height: calc(100% - 34px); object-fit: contain; }
#sense-rating p { margin: 0; font-size: 0.92rem; }
#sense-chat .message { font-size: 0.95rem; }
footer { opacity: 0.6; }
"""


def theme() -> gr.themes.Base:
    """A calm indigo theme with system fonts only (no web fonts: the page works offline)."""
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="cyan", neutral_hue="slate",
                          font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
