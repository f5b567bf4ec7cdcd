"""knowledge.content: the reference spectrum of real music and a track's excess over it, on the shared data."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import soundfile as sf

from knowledge import content
from knowledge.config import cache_dir
from knowledge.expert import Region
from knowledge.fr_store import FR_GRID_HZ
from knowledge.words import CALIBRATION_RATE, region_level_db
from tools.eq import Filter, apply_eq, frequency_response_db

MUD = Region(150.0, 500.0, 1)


@pytest.fixture(scope="module")
def reference(shared_data, sense_home_dir):
    """The reference, built (or read) in the session's private SENSE_HOME."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SENSE_HOME", str(sense_home_dir))
    try:
        return content.load_reference(shared_data)
    finally:
        mp.undo()


def _excerpt(path, start_s: float, length_s: float) -> tuple[np.ndarray, int]:
    rate = sf.info(str(path)).samplerate
    data, rate = sf.read(str(path), start=int(start_s * rate), frames=int(length_s * rate), dtype="float32",
                         always_2d=True)
    return np.ascontiguousarray(data.T), rate


def test_reference_is_built_from_real_whole_tracks_and_cached(shared_data, reference):
    assert len(reference.tracks) >= 3
    assert all(t.startswith("music/") and t.endswith(".ogg") and "/nc/" not in t for t in reference.tracks)
    assert all(sf.info(str(shared_data / t)).duration >= content.EXCERPT_S for t in reference.tracks)
    assert reference.track_levels_db.shape == (len(reference.tracks), FR_GRID_HZ.size)
    ref_band = (FR_GRID_HZ >= 100) & (FR_GRID_HZ < 16000)
    assert abs(float(np.mean(reference.track_levels_db[:, ref_band]))) < 1e-9  # each normalised to its mean
    cached = list(cache_dir().glob("content_reference-*.npz"))
    assert len(cached) == 1
    start = time.perf_counter()
    again = content.load_reference(shared_data)
    assert time.perf_counter() - start < 0.5  # read from the cache, not measured again
    np.testing.assert_array_equal(again.track_levels_db, reference.track_levels_db)
    assert again.tracks == reference.tracks


def test_a_normal_mix_lies_within_the_spread_and_a_solo_trumpet_does_not(shared_data, reference):
    spread = reference.region_spread_db(MUD)
    assert 0.5 < spread < 12.0
    path = shared_data / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
    middle = (sf.info(str(path)).duration - content.EXCERPT_S) / 2  # its middle 30 s (the 10 s eval clip: +2.7 dB)
    excess = content.region_excess_db(content.measure(*_excerpt(path, middle, content.EXCERPT_S)), MUD, reference)
    print(f"\nVibe Ace 150–500 Hz: {excess:+.1f} dB (spread ±{spread:.1f} dB)")
    assert abs(excess) <= spread
    trumpet = next(p for p in sorted((shared_data / "music").glob("*.ogg")) if "trumpet" in p.name)
    assert f"music/{trumpet.name}" not in reference.tracks  # a 5 s loop of one instrument is not a reference mix
    assert content.region_excess_db(content.measure(*_excerpt(trumpet, 0.0, 5.0)), MUD, reference) < -spread


def test_a_planted_boost_shows_as_its_region_level(shared_data, reference):
    samples, rate = _excerpt(shared_data / "music" / "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg", 40.0, 10.0)
    boost = [Filter(type="peaking", frequency_hz=274.0, gain_db=6.0, q=0.78)]
    before = content.region_excess_db(content.measure(samples, rate), MUD, reference)
    after = content.region_excess_db(content.measure(apply_eq(samples, rate, boost), rate), MUD, reference)
    expected = region_level_db(frequency_response_db(boost, FR_GRID_HZ, CALIBRATION_RATE), MUD)
    assert after - before == pytest.approx(expected, abs=0.3)


def test_measure_file_is_cached_per_path_and_mtime(shared_data, tmp_path):
    samples, rate = _excerpt(shared_data / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg", 20.0, 10.0)
    path = tmp_path / "clip.wav"
    sf.write(path, samples.T, rate, subtype="FLOAT")
    first = content.measure_file(path)
    assert content.measure_file(path) is first
    sf.write(path, (0.5 * samples).T, rate, subtype="FLOAT")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = content.measure_file(path)
    assert second is not first
    np.testing.assert_allclose(second.level_db, first.level_db, atol=1e-3)  # level-independent shape


def test_silent_or_too_short_audio_is_refused():
    with pytest.raises(content.ContentError, match="silent"):
        content.measure(np.zeros((2, 44100), dtype=np.float32), 44100)
    with pytest.raises(content.ContentError, match="too short"):
        content.measure(np.ones((2, 100), dtype=np.float32), 44100)
