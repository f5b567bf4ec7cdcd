"""tools.camilladsp: CamillaDSP config export and SetConfigJson over a websocket, against a local fake engine.

The fake server checks what CamillaDSP v3's config parser requires of the pushed JSON (the top-level keys,
every pipeline step's filters defined, numeric Biquad parameters) and records every message it receives.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import threading

import numpy as np
import pytest
import soundfile as sf
import yaml

from tools.camilladsp import (
    FIR_NAME, PREAMP_NAME, CamillaDspError, CamillaDspUnreachableError, camilladsp_config, config_preamp_db,
    config_yaml, fir_response_db, get_config, push_config, write_fir_wav,
)
from tools.eq import Filter, frequency_response_db
from tools.errors import OutputExistsError, SenseError
from tools.export import EVAL_GRID_HZ

ROOM = [
    Filter(type="low_shelf", frequency_hz=105.0, gain_db=4.5, q=0.7071),
    Filter(type="peaking", frequency_hz=1234.5, gain_db=-3.25, q=1.41),
    Filter(type="high_shelf", frequency_hz=9000.0, gain_db=-2.0, q=0.7),
    Filter(type="high_pass", frequency_hz=25.0, q=0.5),
    Filter(type="low_pass", frequency_hz=30000.0, q=0.7071),  # above 48 kHz's Nyquist: left out
]
BIQUAD_KEYS = {"Peaking": {"freq", "gain", "q"}, "Lowshelf": {"freq", "gain", "q"},
               "Highshelf": {"freq", "gain", "q"}, "Lowpass": {"freq", "q"}, "Highpass": {"freq", "q"}}


def validate(config: dict) -> str | None:
    """What CamillaDSP would reject in a pushed config (None when it is fine)."""
    for key in ("devices", "filters", "pipeline"):
        if key not in config:
            return f"missing {key}"
    devices = config["devices"]
    if not {"samplerate", "chunksize", "capture", "playback"} <= set(devices):
        return "devices incomplete"
    for step in config["pipeline"]:
        missing = [n for n in step["names"] if n not in config["filters"]]
        if step["type"] != "Filter" or missing:
            return f"pipeline step names undefined filters {missing}"
    for name, flt in config["filters"].items():
        if flt["type"] == "Biquad":
            params = flt["parameters"]
            need = BIQUAD_KEYS.get(params.get("type"))
            if need is None or set(params) - {"type"} != need:
                return f"{name}: bad Biquad parameters {params}"
            if not all(isinstance(params[k], (int, float)) and math.isfinite(params[k]) for k in need):
                return f"{name}: non-numeric Biquad parameters"
    return None


class FakeCamillaDsp:
    """A websocket server on 127.0.0.1 answering SetConfigJson/GetConfigJson/Reload as CamillaDSP v3 does."""

    def __init__(self, refuse: str | None = None):
        from websockets.sync.server import serve

        self.received: list = []
        self.config: dict | None = None
        self.refuse = refuse
        self.server = serve(self.handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, ws) -> None:
        for raw in ws:
            message = json.loads(raw)
            self.received.append(message)
            name = message if isinstance(message, str) else next(iter(message))
            ws.send(json.dumps({name: self.answer(name, message)}))

    def answer(self, name: str, message) -> dict:
        if name == "SetConfigJson":
            config = json.loads(message[name])
            if self.refuse is not None:  # "" answers a bare Error, as CamillaDSP v3 does
                return {"result": "Error", **({"value": self.refuse} if self.refuse else {})}
            problem = validate(config)
            if problem:
                return {"result": "Error", "value": problem}
            self.config = config
            return {"result": "Ok", "value": None}
        if name == "GetConfigJson":
            return {"result": "Ok", "value": json.dumps(self.config) if self.config else ""}
        return {"result": "Ok"}

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def fake():
    server = FakeCamillaDsp()
    yield server
    server.close()


def test_config_filters_match_input_numbers():
    config = camilladsp_config(ROOM, 48000)
    filters = config["filters"]
    eq = [v["parameters"] for k, v in filters.items() if k.startswith("sense_eq_")]
    assert len(eq) == 4  # the 30 kHz low-pass is above Nyquist
    assert eq[0] == {"type": "Lowshelf", "freq": 105.0, "gain": 4.5, "q": 0.7071}
    assert eq[1] == {"type": "Peaking", "freq": 1234.5, "gain": -3.25, "q": 1.41}
    assert eq[2] == {"type": "Highshelf", "freq": 9000.0, "gain": -2.0, "q": 0.7}
    assert eq[3] == {"type": "Highpass", "freq": 25.0, "q": 0.5}
    assert validate(config) is None
    assert config["devices"]["samplerate"] == 48000
    assert config["devices"]["capture"] == {"type": "Stdin", "channels": 2, "format": "FLOAT32LE"}
    assert [s["channels"] for s in config["pipeline"]] == [[0], [1]]
    assert config["pipeline"][0]["names"][0] == PREAMP_NAME
    v2 = camilladsp_config(ROOM, 48000, version=2, channels=3,
                           playback={"type": "Alsa", "device": "hw:0", "format": "S32LE"})
    assert [s["channel"] for s in v2["pipeline"]] == [0, 1, 2]
    assert v2["devices"]["playback"] == {"channels": 3, "type": "Alsa", "device": "hw:0", "format": "S32LE"}


def test_preamp_covers_the_largest_boost_measured():
    """Preamp = -(largest boost of the biquads), rounded down to 0.1 dB: measured on the response."""
    config = camilladsp_config(ROOM, 48000, gain_db=-2.0)
    boost = float(np.max(frequency_response_db(ROOM, EVAL_GRID_HZ, 48000)))
    assert boost > 2.5  # the low shelf, less the high-pass below it
    gain = config["filters"][PREAMP_NAME]["parameters"]["gain"]
    assert -boost - 2.0 - 0.1 - 1e-9 <= gain <= -boost - 2.0 + 1e-9
    cuts = [Filter(type="peaking", frequency_hz=500, gain_db=-6, q=1.0)]
    assert camilladsp_config(cuts, 48000)["filters"][PREAMP_NAME]["parameters"]["gain"] == 0.0
    with pytest.raises(ValueError):
        camilladsp_config(ROOM, 48000, gain_db=3.0)


def test_fir_wav_and_conv_filter(tmp_path):
    """The FIR file: mono 32-bit float WAV with a 16/18/40-byte fmt chunk (what CamillaDSP's reader takes),
    read back to float32 precision; the Conv filter names it and the preamp covers the FIR's boost."""
    rng = np.random.default_rng(0)
    fir = np.zeros(512)
    fir[0], fir[1:64] = 1.0, 0.02 * rng.standard_normal(63)
    fir *= 2.0  # +6 dB broadband
    path = write_fir_wav(fir, tmp_path / "room.wav", 48000)
    data, rate = sf.read(path, dtype="float64")
    assert rate == 48000 and data.shape == (512,)
    assert np.max(np.abs(data - fir)) < 1e-6
    raw = path.read_bytes()
    fmt_at = raw.index(b"fmt ")
    fmt_len, fmt_code = struct.unpack("<IH", raw[fmt_at + 4:fmt_at + 10])
    assert fmt_len in (16, 18, 40) and fmt_code in (3, 0xFFFE)  # IEEE float (or extensible)
    with pytest.raises(OutputExistsError):
        write_fir_wav(fir, path, 48000)
    write_fir_wav(fir * 0.5, path, 48000, overwrite=True)
    assert np.max(np.abs(sf.read(path)[0] - fir * 0.5)) < 1e-6

    config = camilladsp_config(ROOM, 48000, fir_path=path)
    conv = config["filters"][FIR_NAME]
    assert conv == {"type": "Conv", "description": "SENSE device transfer",
                    "parameters": {"type": "Wav", "filename": str(path), "channel": 0}}
    assert config["pipeline"][1]["names"][:2] == [PREAMP_NAME, FIR_NAME]
    total = frequency_response_db(ROOM, EVAL_GRID_HZ, 48000) + fir_response_db(fir * 0.5, 48000)
    gain = config["filters"][PREAMP_NAME]["parameters"]["gain"]
    assert gain == config_preamp_db(ROOM, 48000, fir * 0.5)
    assert -np.max(total) - 0.1 - 1e-9 <= gain <= -np.max(total) + 1e-9


def test_yaml_round_trips():
    config = camilladsp_config(ROOM, 44100, fir_path="/srv/sense/room.wav", fir=np.array([1.0, 0.1]))
    text = config_yaml(config)
    assert yaml.safe_load(text) == config
    assert text.startswith("title: SENSE room EQ\n")


def test_push_config_sends_set_config_json_only(fake):
    config = camilladsp_config(ROOM, 48000)
    push_config(fake.url, config)
    assert fake.config == config
    assert len(fake.received) == 1 and set(fake.received[0]) == {"SetConfigJson"}
    assert isinstance(fake.received[0]["SetConfigJson"], str)  # the config travels as a JSON string
    peaking = [f["parameters"] for f in fake.config["filters"].values()
               if f["type"] == "Biquad" and f["parameters"]["type"] == "Peaking"]
    assert peaking == [{"type": "Peaking", "freq": 1234.5, "gain": -3.25, "q": 1.41}]
    assert get_config(fake.url) == config
    assert all(m != "Reload" and "Reload" not in m for m in fake.received)


def test_server_error_raises_with_its_message(fake):
    broken = camilladsp_config(ROOM, 48000)
    broken["pipeline"][0]["names"].append("no_such_filter")
    with pytest.raises(CamillaDspError, match="refused SetConfigJson: Error: .*no_such_filter") as info:
        push_config(fake.url, broken)
    assert isinstance(info.value, SenseError) and not isinstance(info.value, CamillaDspUnreachableError)
    assert fake.config is None
    assert [set(m) for m in fake.received] == [{"SetConfigJson"}]  # no Reload after the error either


@pytest.mark.parametrize("refuse, match", [("Invalid value for samplerate", "Error: Invalid value for samplerate"),
                                           ("", r"Error \(CamillaDSP's log says why\)")])
def test_refusing_server_message_and_bare_error(refuse, match):
    server = FakeCamillaDsp(refuse=refuse)
    try:
        with pytest.raises(CamillaDspError, match=match):
            push_config(server.url, camilladsp_config(ROOM, 48000))
    finally:
        server.close()
    assert [set(m) for m in server.received] == [{"SetConfigJson"}]


def test_unreachable_port_raises_clearly():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CamillaDspUnreachableError, match=f"cannot reach CamillaDSP at ws://127.0.0.1:{port}"):
        push_config(f"ws://127.0.0.1:{port}", camilladsp_config(ROOM, 48000), timeout_s=2)
    with pytest.raises(CamillaDspUnreachableError, match="not a websocket URL"):
        push_config("http://127.0.0.1:1234", {}, timeout_s=2)
