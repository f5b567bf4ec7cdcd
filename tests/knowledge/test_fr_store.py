"""knowledge.fr_store on the shared AutoEq set and on AutoEq-like folders without index.csv."""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from knowledge.config import DataMissingError
from knowledge.fr_store import FR_GRID_HZ, MEASUREMENT_TYPES, FRStore

BAND = (FR_GRID_HZ >= 300) & (FR_GRID_HZ <= 3000)


def test_grid_is_481_log_points_20hz_to_20khz():
    assert FR_GRID_HZ.shape == (481,)
    assert FR_GRID_HZ[0] == pytest.approx(20.0) and FR_GRID_HZ[-1] == pytest.approx(20000.0)
    ratios = FR_GRID_HZ[1:] / FR_GRID_HZ[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert np.log2(ratios[0]) == pytest.approx(1 / 48, rel=0.01)  # 1/48 octave


def _index_rows(autoeq_dir):
    with open(autoeq_dir / "index.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_shared_set_models_types_and_sources(fr_store, autoeq_dir):
    """devices() is the sorted set of measured models of index.csv; types and sources as listed."""
    rows = _index_rows(autoeq_dir)
    measured = [r for r in rows if r["kind"] == "measurement"]
    assert fr_store.devices() == sorted({r["device"] for r in measured})
    for name in fr_store.devices():
        listed = [r for r in measured if r["device"] == name]
        assert fr_store.device_type(name) in MEASUREMENT_TYPES
        assert fr_store.device_type(name) == Counter(r["type"] for r in listed).most_common(1)[0][0]
        assert fr_store.sources(name) == sorted({r["source"] for r in listed})
        assert len(fr_store.measurements(name)) == len(listed)
    name = fr_store.devices()[0]
    assert fr_store.device_type(name.upper()) == fr_store.device_type(name)  # case-insensitive
    assert [t.device for t in fr_store.targets()] == sorted(r["device"] for r in rows if r["kind"] == "target")


def test_curves_are_on_the_grid_and_normalised_300hz_3khz(fr_store):
    for name in fr_store.devices():
        for c in fr_store.measurements(name):
            assert c.db.shape == (481,) and c.kind == "measurement"
            assert abs(c.db[BAND].mean()) < 1e-9
    for t in fr_store.targets():
        assert t.kind == "target" and abs(t.db[BAND].mean()) < 1e-9


def test_two_measurements_kept_and_curve_is_their_mean(fr_store):
    """A model measured on two rigs (picked from the store): both kept, the curve is their mean."""
    name = next((n for n in fr_store.devices() if len(fr_store.sources(n)) == 2), None)
    if name is None:
        pytest.skip("no model measured by two sources in this AutoEq folder")
    ms = fr_store.measurements(name)
    assert len(ms) == 2 and sorted(m.source for m in ms) == fr_store.sources(name)
    assert np.abs(ms[0].db - ms[1].db).max() > 3  # rigs differ: several dB somewhere
    mean = fr_store.curve(name)
    np.testing.assert_allclose(mean.db, (ms[0].db + ms[1].db) / 2)
    assert mean.source == "+".join(fr_store.sources(name)) and mean.type == fr_store.device_type(name)


def test_class_targets_follow_autoeq_pairing(fr_store):
    """in-ear/earbud → Harman in-ear 2019v2; over-ear → Harman over-ear 2018, or its RTINGS-rig
    version when every measurement of the model is from RTINGS."""
    for name in fr_store.devices():
        type_, sources = fr_store.device_type(name), fr_store.sources(name)
        if type_ in ("in-ear", "earbud"):
            want = "Harman in-ear 2019v2"
        elif type_ == "over-ear":
            want = "Rtings Harman over-ear 2018" if sources == ["rtings"] else "Harman over-ear 2018"
        else:
            continue
        assert fr_store.target_for(name).device == want, name
    assert fr_store.target("harman_in-ear_2019v2").device == "Harman in-ear 2019v2"


def test_unknown_device_error_names_close_models(fr_store):
    name = max(fr_store.devices(), key=len)
    missing = f"{name} Mk 9"
    assert missing not in fr_store.devices()
    with pytest.raises(KeyError, match=re.escape(name)):
        fr_store.curve(missing)


def test_real_curve_shape_is_plausible(fr_store):
    """Harman in-ear target: bass shelf above the midrange, ear-gain peak near 3 kHz."""
    target = fr_store.target("Harman in-ear 2019v2").db
    at = lambda hz: target[np.argmin(np.abs(FR_GRID_HZ - hz))]  # noqa: E731
    assert at(50) > 4.0
    assert at(3000) > at(1000) + 6.0


def _autoeq_checkout(src, dst, with_extra_columns=False):
    """Copy a few shared CSVs into AutoEq's own layout (measurements/<source>/data/<type>/, targets/)."""
    picks = {
        "measurements/rtings/in-ear/Apple AirPods Pro.csv": "measurements/rtings/data/in-ear/Apple AirPods Pro.csv",
        "measurements/oratory1990/over-ear/Sony WH-1000XM4.csv":
            "measurements/oratory1990/data/over-ear/Sony WH-1000XM4.csv",
        "measurements/rtings/over-ear/Sony WH-1000XM4.csv":
            "measurements/rtings/data/over-ear/Sony WH-1000XM4 (sample 2).csv",
        "targets/Harman in-ear 2019v2.csv": "targets/harman_in-ear_2019v2.csv",
    }
    for rel, new in picks.items():
        (dst / new).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, dst / new)
    if with_extra_columns:  # results CSVs of a full checkout carry more columns; only `raw` is used
        rows = (src / "measurements/rtings/in-ear/Google Pixel Buds Pro.csv").read_text().splitlines()
        out = ["frequency,raw,smoothed,error,equalization"] + [r + ",0.0,1.0,-2.0" for r in rows[1:]]
        path = dst / "measurements/rtings/data/in-ear/Google Pixel Buds Pro.csv"
        path.write_text("\n".join(out) + "\n")
    return dst


def test_walks_autoeq_layout_without_index(autoeq_dir, tmp_path, caplog):
    root = _autoeq_checkout(autoeq_dir, tmp_path / "AutoEq", with_extra_columns=True)
    (root / "measurements/rtings/data/in-ear/Broken.csv").write_text("freq;spl\n1;2\n")
    (root / "results").mkdir()
    (root / "results/ignored.csv").write_text("frequency,raw\n20,1\n20000,1\n")
    with caplog.at_level(logging.WARNING, logger="knowledge.fr_store"):
        store = FRStore.load(root)
    assert "Broken.csv" in caplog.text
    assert store.devices() == ["Apple AirPods Pro", "Google Pixel Buds Pro", "Sony WH-1000XM4"]
    assert store.device_type("Sony WH-1000XM4") == "over-ear"
    assert store.sources("Sony WH-1000XM4") == ["oratory1990", "rtings"]  # "(sample 2)" is the same model
    assert store.curve("Sony WH-1000XM4").source == "oratory1990+rtings"
    assert store.target_for("Apple AirPods Pro").device == "harman_in-ear_2019v2"
    # the copied files give the same curves as the indexed shared set
    shared = FRStore.load(autoeq_dir)
    np.testing.assert_allclose(store.curve("Apple AirPods Pro").db, shared.curve("Apple AirPods Pro").db)
    np.testing.assert_allclose(store.curve("Google Pixel Buds Pro").db, shared.curve("Google Pixel Buds Pro").db)


def test_plain_folder_of_csvs_and_edge_hold(tmp_path):
    freq = np.geomspace(100, 10000, 50)
    db = 10 * np.log10(freq / 1000)  # +10 dB per decade
    lines = ["frequency,raw"] + [f"{f:.3f},{d:.4f}" for f, d in zip(freq, db)]
    (tmp_path / "My Headphone.csv").write_text("\n".join(lines) + "\n")
    store = FRStore.load(tmp_path)
    c = store.curve("My Headphone")
    assert (c.type, c.source) == ("unknown", "unknown")
    assert np.all(c.db[FR_GRID_HZ <= 100] == c.db[0])  # held below the first point
    assert np.all(c.db[FR_GRID_HZ >= 10000] == c.db[-1])  # held above the last point
    mid = (FR_GRID_HZ > 150) & (FR_GRID_HZ < 8000)
    slope = np.polyfit(np.log10(FR_GRID_HZ[mid]), c.db[mid], 1)[0]
    assert slope == pytest.approx(10.0, abs=0.01)


def test_folder_without_usable_csvs_is_one_clear_line(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataMissingError) as err:
        FRStore.load(tmp_path)
    assert "\n" not in str(err.value) and "no usable AutoEq CSVs" in str(err.value)
    with pytest.raises(DataMissingError):
        FRStore.load(tmp_path / "does-not-exist")


def test_content_hash_tracks_file_bytes(autoeq_dir, tmp_path):
    root = _autoeq_checkout(autoeq_dir, tmp_path / "a")
    first = FRStore.load(root).content_hash()
    assert FRStore.load(root).content_hash() == first
    path = root / "measurements/rtings/data/in-ear/Apple AirPods Pro.csv"
    path.write_text(path.read_text().replace("20.00,", "20.00,1", 1))
    assert FRStore.load(root).content_hash() != first
