"""sense translate: the product's transfer, serial == a real Dask cluster (scheduler + 2 worker processes on
127.0.0.1), the report files, and the command line. A 2 s excerpt × 3 devices keeps it short."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from knowledge.fr_store import FR_GRID_HZ
from translate.devices import CLIP_DB, MAX_BOOST_DB, SMOOTHING_OCTAVES, UnknownDeviceError, load_catalogue
from translate.render import OCTAVE_BANDS_HZ, load_track, render

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ("Apple AirPods Pro (2nd generation)", "Sony WH-1000XM4", "KEF LS50")  # in-ear, over-ear, loudspeaker


@pytest.fixture(scope="module")
def setup(data_dir, vibe_ace):
    root = str(data_dir.resolve())
    catalogue = load_catalogue(root)
    refs = [catalogue.ref(name) for name in DEVICES]
    return SimpleNamespace(root=root, catalogue=catalogue, refs=refs, track=load_track(vibe_ace, 2.0, 10.0))


@pytest.fixture(scope="module")
def serial(setup):
    from translate.cluster import run_serial

    return run_serial([setup.track], setup.refs, "dsp", setup.root)


def test_catalogue_holds_every_headphone_and_speaker(setup):
    kinds = [r.kind for r in setup.catalogue.refs]
    assert kinds.count("headphone") == len(setup.catalogue.store.devices()) == 47
    assert kinds.count("speaker") >= 80  # 96 measured units of fewer models
    assert [r.type for r in setup.refs] == ["in-ear", "over-ear", "speaker"]
    assert setup.catalogue.resolve("sony wh-1000xm4, KEF LS50") == setup.refs[1:]
    with pytest.raises(UnknownDeviceError, match="closest: .*AirPods"):
        setup.catalogue.resolve("AirPods Pro 9")


def test_settings_are_the_agents():
    from agent.planner import TRANSFER_MAX_BOOST_DB, TRANSFER_SMOOTHING_OCTAVES
    from agent.toolbox import MAX_CUT_DB
    from tools.eq import MAX_GAIN_DB

    assert (SMOOTHING_OCTAVES, MAX_BOOST_DB, CLIP_DB) == (round(TRANSFER_SMOOTHING_OCTAVES, 4), TRANSFER_MAX_BOOST_DB,
                                                         (MAX_CUT_DB, MAX_GAIN_DB))


def test_dsp_render_equals_the_agents_transfer(setup, serial):
    """The agent's device_transfer + finalize tools on the same excerpt give the same numbers."""
    from agent import plan as p
    from agent.toolbox import Bench, FinalizeTool, TransferTool
    from tools.analysis import band_energy_change_db

    track, store, name = setup.track, setup.catalogue.store, DEVICES[1]
    bench = Bench(rt=SimpleNamespace(store=store), original=track.samples, sample_rate=track.sample_rate,
                  signal=track.samples)
    TransferTool().run(p.TransferArgs(target=name, reference=store.target_for(name).device, reference_kind="target",
                                      smoothing_octaves=SMOOTHING_OCTAVES, max_boost_db=MAX_BOOST_DB), bench, 0)
    FinalizeTool().run(p.FinalizeArgs(), bench, 1)
    mine, facts = serial[1], bench.facts["finalize"]
    assert (mine.lufs_device, mine.lufs_out, mine.true_peak_dbtp) == (
        facts["lufs_processed"], facts["lufs_out"], facts["true_peak_dbtp"])
    assert mine.band_balance_db == band_energy_change_db(track.samples, bench.output, track.sample_rate,
                                                         bands=OCTAVE_BANDS_HZ)


def test_render_measures_the_device(setup, serial):
    for r in serial:
        assert r.true_peak_dbtp <= -1.0 + 1e-6 and r.duration_s == 2.0
        assert abs(r.lufs_out - r.lufs_in) < 0.5 or r.limiter_gain_reduction_db > 0
        assert list(r.band_balance_db) == list(OCTAVE_BANDS_HZ)
        assert max(abs(v) for v in r.band_balance_db.values()) > 1.0  # every device audibly changes the balance
    speaker = setup.catalogue.dsp_curve(setup.refs[2])  # KEF LS50: a small two-way, no deep bass
    assert speaker[FR_GRID_HZ < 35].max() < -10 and speaker.max() <= MAX_BOOST_DB
    assert serial[2].band_balance_db["31.5"] < -6 and serial[1].band_balance_db["31.5"] > 0  # Sony: bass-heavy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory):
    """`dask scheduler` + two `dask worker` processes on 127.0.0.1 (stopped after the module)."""
    port, dask = _free_port(), str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    commands = [[dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [[dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                  "--name", f"w{i}"] for i in (1, 2)]
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=open(logs / f"{i}.log", "w"), stderr=subprocess.STDOUT)
             for i, c in enumerate(commands)]
    try:
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_cluster_equals_serial(setup, serial, scheduler_address):
    from translate.cluster import open_client, run_cluster, worker_catalogue_loads

    with open_client(scheduler_address) as client:
        client.wait_for_workers(2, timeout=90)
        results = run_cluster(client, [setup.track] * 2, setup.refs, "dsp", setup.root)
        loads = worker_catalogue_loads(client)
    assert [r.numbers() for r in results] == [r.numbers() for r in serial] * 2
    assert len(loads) == 2 and set(loads.values()) == {1}  # each worker loaded the FR data once for 6 renders
    assert {r.worker for r in results}.isdisjoint({r.worker for r in serial})  # really rendered elsewhere


def test_report_files(tmp_path, serial):
    from translate.report import RunInfo, csv_header, read_csv, write_report

    info = RunInfo("serial", "dsp", 1.0, "2 s from 10 s")
    first = write_report(serial, tmp_path, info)
    second = write_report(serial, tmp_path, info)  # nothing is overwritten
    assert (first.csv.name, second.csv.name, second.html.name) == ("translate.csv", "translate-1.csv", "translate-1.html")
    rows = read_csv(first.csv)
    assert list(rows[0]) == csv_header() and len(rows) == 3
    assert [float(row["band_1k_db"]) for row in rows] == [r.band_balance_db["1k"] for r in serial]
    page = first.html.read_text()
    assert page.count("data:image/png;base64,") == 3 and "KEF LS50" in page


def _sense(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sense_cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}, timeout=120)


def test_cli_help_and_bad_device(tmp_path, vibe_ace):
    proc = _sense("translate", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for option in ("--devices", "--demt", "--seconds", "--out", "--address", "--workers", "--serial"):
        assert option in proc.stdout
    proc = _sense("translate", str(vibe_ace), "--devices", "Sony WH-1000XM4,Nokia Lumia 9", "--serial",
                  "--out", str(tmp_path / "out"), cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: unknown device 'Nokia Lumia 9'; closest:")
    assert not (tmp_path / "out").exists()
