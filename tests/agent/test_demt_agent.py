"""The agent chooses the learned device transfer (DeMT) when asked, with the shipped checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from agent import rules
from tests.agent.turns import run_turn


@pytest.mark.parametrize("text,method", [
    ("use the neural model", "demt"),
    ("make it sound like AirPods with the learned model", "demt"),
    ("do that with DeMT", "demt"),
    ("go back to the DSP filter", "dsp"),
    ("make it sound like AirPods", None),
    ("how would it sound on the Sony model?", None),
])
def test_transfer_method_words(text, method):
    assert rules.transfer_method(text) == method


def test_use_the_neural_model_reruns_the_transfer_with_demt(engine, excerpt, tmp_path):
    thread = "demt"
    dsp = run_turn(engine, "make it sound like AirPods Max", excerpt, thread=thread, output_path=tmp_path / "dsp.wav")
    assert dsp.plan[0].args.method == "dsp"
    neural = run_turn(engine, "use the neural model", excerpt, thread=thread, output_path=tmp_path / "demt.wav")
    assert neural.status == "processed"
    call = neural.plan[0]
    assert call.tool == "device_transfer" and call.args.method == "demt"
    assert call.args.target == "Apple AirPods Max"
    assert "demt" in neural.execution.seconds
    assert "DeMT neural model" in neural.reply
    # the model renders the same device: its band changes follow the DSP transfer's direction where that is clear
    a = dsp.measurements["band_energy_change_db"]
    b = neural.measurements["band_energy_change_db"]
    clear = [band for band in a if abs(a[band]) >= 2.0]
    assert clear and all(np.sign(a[band]) == np.sign(b[band]) for band in clear), (a, b)
    assert abs(neural.measurements["lufs_out"] - neural.measurements["lufs_in"]) < 0.5
    back = run_turn(engine, "go back to the DSP filter", excerpt, thread=thread, output_path=tmp_path / "dsp2.wav")
    assert back.plan[0].args.method == "dsp"
