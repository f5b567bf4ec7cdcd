"""DeMT: simulation, model (shapes, identity start, FiLM conditioning, learning), inference API,
VLM embedding path and the shipped checkpoint's metrics on a fixed test slice."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from demt.model import DemtConfig, DemtModel
from demt.train import neg_snr_loss

TINY = DemtConfig(sample_rate=16000, n_fft=512, hop=256, embed_dim=64, cond_dim=32, freq_channels=[8, 8, 16],
                  time_channels=[4, 8], d_model=32, heads=2, segment_seconds=0.5)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def devices(data_dir):
    from demt.devices import load_devices

    return load_devices()


def test_speaker_reader_puts_spinoramas_on_the_store_grid(data_dir):
    from demt.speakers import load_speakers
    from knowledge.fr_store import FR_GRID_HZ

    speakers = load_speakers()
    assert len(speakers) == 96
    band = (FR_GRID_HZ >= 300) & (FR_GRID_HZ <= 3000)
    for s in speakers[:10]:
        lw = s.curves["listening_window_db"]
        assert lw.shape == (481,) and abs(lw[band].mean()) < 1e-9
    models = {s.model for s in speakers}
    assert "JBL 705P" in models and "Neumann KH 80 DSP" in models and len(models) == 93


def test_devices_split_and_embedding_pool(devices):
    from demt.devices import EMBED_DIM, embedding_pool, split_devices
    from knowledge.fr_store import FRStore

    # every headphone model of the FR store is a device, whatever the folder holds
    assert [d.name for d in devices if d.kind == "headphone"] == FRStore.load().devices()
    seen, held = split_devices(devices, 0)
    n_speakers = sum(d.kind == "speaker" for d in devices)
    assert len(seen) + len(held) == len(devices) and not {d.name for d in seen} & {d.name for d in held}
    assert sum(d.kind == "headphone" for d in held) == 1 and len(held) == 1 + min(8, n_speakers)
    assert {d.name for d in split_devices(devices[::-1], 0)[1]} == {d.name for d in held}  # order-free
    dev = next((d for d in devices if d.kind == "headphone" and len(d.units_db) >= 2), None)
    if dev is None:
        pytest.skip("no headphone model with two measurements in the FR store")
    pool = embedding_pool(dev)
    n_fixed = 1 + len(dev.units_db) + len(dev.views_db)  # catalogue, each measurement and view
    assert pool.shape == (n_fixed + 6, EMBED_DIM)  # and 6 perturbations
    assert embedding_pool(devices[0], full=False).shape == (1, EMBED_DIM)
    # pool members are near the catalogue embedding (0.5 dB perturbations) but not equal
    spread = np.abs(pool[n_fixed:] - pool[0]).max(axis=1) * 10  # dB
    assert np.all(spread > 0.05) and np.all(spread < 3.0)


def test_min_phase_ir_follows_the_curve():
    from demt.data import min_phase_ir
    from knowledge.fr_store import FR_GRID_HZ

    curve = 6 * np.sin(np.log2(FR_GRID_HZ / 20)) * (FR_GRID_HZ > 40)
    h = min_phase_ir(curve, 44100)
    f = np.fft.rfftfreq(1 << 16, 1 / 44100)
    got = 20 * np.log10(np.abs(np.fft.rfft(h, 1 << 16)) + 1e-12)
    want = np.interp(np.log10(np.maximum(f, 1)), np.log10(FR_GRID_HZ), curve)
    sel = (f > 100) & (f < 16000)
    assert np.sqrt(np.mean((got[sel] - want[sel]) ** 2)) < 0.3
    assert np.argmax(np.abs(h)) < 50  # minimum phase: energy at the start


def test_simulation_is_seeded_and_sets_a_realistic_ceiling(devices):
    from demt.data import Recipe, Simulator
    from tools.metrics import snr_db

    dev = next(d for d in devices if d.name == "KEF LS50")
    sim = Simulator([dev], "val", Recipe(), seed=3)
    a, b = sim.example(5, 1.0), sim.example(5, 1.0)
    assert np.array_equal(a["y"], b["y"]) and a["facts"] == b["facts"]
    assert not np.array_equal(a["y"], sim.example(6, 1.0)["y"])
    # the catalogue curve alone (what a model sees) reproduces the unit within the simulated spread
    from demt.data import min_phase_ir
    import scipy.signal

    p = Recipe().preroll
    est = scipy.signal.fftconvolve(a["x"], min_phase_ir(dev.catalogue_db, 44100)[None])[:, : a["x"].shape[1]]
    ceiling = snr_db(a["y"][:, p:], est[:, p:])
    identity = snr_db(a["y"][:, p:], a["x"][:, p:])
    assert 15 < ceiling < 45 and identity < ceiling - 5


def test_untrained_model_is_the_identity_and_keeps_shapes():
    torch.manual_seed(0)
    m = DemtModel(TINY).eval()
    x = torch.randn(3, 7777)
    with torch.no_grad():
        y = m(x, torch.randn(3, 64))
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-4


def _tiny_task(devices, excerpt):
    """A few seconds of real music at 16 kHz and its rendering through two devices."""
    import soundfile as sf
    import scipy.signal

    from demt.data import min_phase_ir
    from demt.devices import encode_curve
    from tools.audio_io import resample

    audio, rate = sf.read(excerpt, dtype="float32", frames=4 * 44100)
    x = resample(audio.T.mean(0), rate, 16000)
    segs = np.stack([x[i * 8000:(i + 1) * 8000] for i in range(8)])  # 8 x 0.5 s
    devs = [next(d for d in devices if d.name == n) for n in ("Apple AirPods", "KEF LS50")]
    ys, embs = [], []
    for k, seg in enumerate(segs):
        d = devs[k % 2]
        ys.append(scipy.signal.fftconvolve(seg, min_phase_ir(d.catalogue_db, 16000, 2048))[: seg.size])
        embs.append(encode_curve(d.catalogue_db))
    return (torch.from_numpy(segs).float(), torch.from_numpy(np.stack(ys)).float(),
            torch.from_numpy(np.stack(embs)))


def test_tiny_model_learns_and_film_conditioning_changes_the_output(devices, excerpt):
    torch.manual_seed(0)
    x, y, emb = _tiny_task(devices, excerpt)
    m = DemtModel(TINY)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    losses = []
    for _ in range(40):
        loss = neg_snr_loss(m(x, emb), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 3.0  # SNR up by > 3 dB in 40 steps
    m.eval()
    with torch.no_grad():
        a = m(x[:2], emb[[0, 0]])
        b = m(x[:2], emb[[1, 1]])  # same audio, the other device's embedding
    change_db = 10 * torch.log10(a.pow(2).sum() / (a - b).pow(2).sum())
    assert change_db < 30  # the embedding moves the output by more than -30 dB
    # without FiLM the embedding has no path into the model
    nf = DemtModel(DemtConfig(**{**TINY.to_json(), "film": False}))
    nf.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.equal(nf(x[:2], emb[[0, 0]]), nf(x[:2], emb[[1, 1]]))


def test_apply_demt_chunks_resamples_and_checks_inputs(tmp_path):
    from demt.infer import CheckpointMissingError, LoadedDemt, apply_demt, load_checkpoint

    cfg = DemtConfig(**{**TINY.to_json(), "sample_rate": 16000})
    loaded = LoadedDemt(DemtModel(cfg).eval(), cfg, tmp_path, {})
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 16000 * 3 + 123))).astype(np.float32)
    y = apply_demt(x, 16000, np.zeros(481), loaded)  # identity model, many overlapping chunks
    assert y.shape == x.shape and np.abs(y - x).max() < 1e-4
    y48 = apply_demt(np.repeat(x, 3, axis=1)[0], 48000, np.zeros(481), loaded)
    assert y48.shape == (x.shape[1] * 3,)
    with pytest.raises(ValueError, match="481"):
        apply_demt(x, 16000, np.zeros(100), loaded)
    with pytest.raises(CheckpointMissingError):
        load_checkpoint(tmp_path / "nothing")


def test_vlm_embedding_path_with_a_tiny_random_model(devices):
    pytest.importorskip("transformers")
    from demt.devices import embedding_pool
    from demt.vlm import VLMEmbedder, render_curve_png

    png = render_curve_png(devices[0].catalogue_db)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    emb = VLMEmbedder.tiny()
    a, a2, b = emb(devices[0].catalogue_db), emb(devices[0].catalogue_db), emb(devices[5].catalogue_db)
    assert a.shape == (emb.dim,) and np.array_equal(a, a2) and np.abs(a - b).max() > 1e-4
    assert embedding_pool(devices[0], full=False, encoder=emb).shape == (1, emb.dim)
    # a model configured for VLM embeddings gets them in apply_demt
    from demt.infer import LoadedDemt, apply_demt

    cfg = DemtConfig(**{**TINY.to_json(), "embed_dim": emb.dim, "embedder": "vlm:tiny"})
    model = DemtModel(cfg).eval()
    x = (0.1 * np.random.default_rng(1).standard_normal((1, 8000))).astype(np.float32)
    assert apply_demt(x, 16000, devices[0].catalogue_db, LoadedDemt(model, cfg, None, {})).shape == x.shape


def test_shipped_checkpoint_reproduces_its_metrics_on_a_fixed_slice(devices):
    """The shipped model on a small fixed slice of the test set: the numbers recorded at export."""
    from demt.evaluate import demt_system, evaluate, summarise
    from demt.infer import DEFAULT_CHECKPOINT, load_checkpoint
    from demt.data import Recipe

    if not (DEFAULT_CHECKPOINT / "model.pt").is_file():
        pytest.skip("no shipped checkpoint")
    size_mb = sum(p.stat().st_size for p in DEFAULT_CHECKPOINT.iterdir()) / 1e6
    assert size_mb <= 25
    loaded = load_checkpoint()
    metrics = json.loads((DEFAULT_CHECKPOINT / "metrics.json").read_text())
    slice_ = metrics["test_slice"]
    chosen = [d for d in devices if d.name in slice_["devices"]]
    rows = evaluate({"dsp": None, "demt": demt_system(loaded)}, chosen, Recipe(), 0, 1, slice_["seconds"])
    s = {r["system"]: r for r in summarise(rows)}
    assert s["demt"]["snr_db"] == pytest.approx(slice_["demt_snr_db"], abs=0.3)
    assert s["demt"]["stoi_pct"] == pytest.approx(slice_["demt_stoi_pct"], abs=0.2)
    assert s["demt"]["snr_db"] > s["dsp"]["snr_db"] - slice_.get("allowed_below_dsp_db", 0.0)
