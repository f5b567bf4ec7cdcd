"""speaker.room: the room store's undo, volume ceiling, history and crash consistency, measured."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speaker.room import (DEFAULT_CEILING_DB, DEFAULT_VOLUME_DB, MIN_VOLUME_DB, DeviceCurve, RoomError,
                          RoomStore, RoomStoreError, default_state, state_json)
from tools.eq import Filter

ROOT = Path(__file__).resolve().parents[2]
BASS_UP = [Filter(type="low_shelf", frequency_hz=120, gain_db=6.0)]
TREBLE_DOWN = [Filter(type="high_shelf", frequency_hz=6000, gain_db=-3.0)]
CURVE = DeviceCurve(frequency_hz=[20.0, 1000.0, 20000.0], gain_db=[3.0, 0.0, -4.0])


@pytest.fixture
def store(tmp_path):
    with RoomStore(tmp_path / "rooms.sqlite") as s:
        yield s


def test_new_room_is_the_hearing_safe_default(store):
    """A room never changed: flat, -12 dB under a -6 dB ceiling, nothing to undo, no history, not stored."""
    state = store.load("kitchen")
    assert state.settings() == default_state("kitchen").settings()
    assert (state.volume_db, state.ceiling_db) == (DEFAULT_VOLUME_DB, DEFAULT_CEILING_DB) == (-12.0, -6.0)
    assert state.filters == [] and state.fir_db is None and state.speaker_model is None
    assert store.undo("kitchen") is None and store.undo_preview("kitchen") is None
    assert store.history("kitchen") == [] and store.rooms() == []
    assert store.load("  kitchen ").room == "kitchen"


def test_apply_and_undo_restore_exactly_multi_level(tmp_path, store):
    """Three applies and a volume change, then a restart: each undo pops one step and restores that state's
    settings exactly; a fifth undo has nothing left. now_playing follows the player, not the undo."""
    room = "kitchen"
    a = store.load(room).changed(filters=BASS_UP, speaker_model="KEF LS50 Meta")
    b = a.changed(filters=BASS_UP + TREBLE_DOWN, fir_db=CURVE, volume_db=-9.5)
    c = b.changed(filters=[], fir_db=None)
    seen = [store.load(room)]
    for new, why in ((a, "warmer"), (b, "sound like my AirPods"), (c, "flat")):
        stored = store.apply(room, new, why)
        assert state_json(stored) == state_json(new)
        seen.append(stored)
    seen.append(store.set_volume(room, -20.0)[0])
    store.set_now_playing(room, "Vibe Ace")
    store.close()
    with RoomStore(tmp_path / "rooms.sqlite") as again:  # restart: the stack is on disk
        assert again.undo_depth(room) == 4
        for want in reversed(seen[:-1]):
            assert state_json(again.undo_preview(room)) == state_json(want.changed(now_playing="Vibe Ace"))
            got = again.undo(room)
            assert got.settings() == want.changed(now_playing="Vibe Ace").settings()
            assert state_json(again.load(room)) == state_json(got)
        assert again.undo(room) is None and again.undo_depth(room) == 0


def test_volume_is_capped_at_the_ceiling_and_says_so(store):
    """+40 dB is held at the ceiling (capped=True); quieter requests pass; an applied state cannot sneak
    past its ceiling, nor raise the ceiling above 0 dB; NaN is refused and changes nothing."""
    state, capped = store.set_volume("kitchen", 40.0, "turn it up all the way")
    assert capped and state.volume_db == DEFAULT_CEILING_DB == -6.0
    state, capped = store.set_volume("kitchen", -20.0)
    assert not capped and state.volume_db == -20.0
    assert store.set_volume("kitchen", -500.0) == (store.load("kitchen"), False)
    assert store.load("kitchen").volume_db == MIN_VOLUME_DB
    loud = store.apply("kitchen", store.load("kitchen").changed(volume_db=10.0, ceiling_db=30.0), "max")
    assert (loud.ceiling_db, loud.volume_db) == (0.0, 0.0)
    with pytest.raises(RoomError):
        store.set_volume("kitchen", float("nan"))
    assert store.load("kitchen").volume_db == 0.0
    boost = store.load("kitchen").changed(filters=[Filter(type="low_shelf", frequency_hz=100, gain_db=40.0)])
    assert boost.filters[0].gain_db == 12.0  # tools.eq clips bands to +-12 dB


def test_history_logs_what_was_done_and_why(store):
    """Every change is one log row (newest first) with its reason and the resulting state; rooms are separate."""
    store.apply("kitchen", store.load("kitchen").changed(filters=BASS_UP), "it's too thin")
    store.set_volume("kitchen", -8.0, "louder")
    store.note("kitchen", "heard", "what's the weather")
    store.undo("kitchen", "undo")
    store.apply("bedroom", store.load("bedroom").changed(volume_db=-30.0), "quiet please")
    rows = store.history("kitchen", 10)
    assert [(r.action, r.reason) for r in rows] == [
        ("undo", "undo"), ("heard", "what's the weather"), ("volume", "louder"), ("apply", "it's too thin")]
    assert rows[0].state == store.load("kitchen") and rows[0].state.volume_db == -12.0
    assert rows[2].state.volume_db == -8.0 and rows[3].state.filters == BASS_UP
    assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)
    assert len(store.history("kitchen", 2)) == 2 and store.rooms() == ["bedroom", "kitchen"]
    assert [r.action for r in store.history("bedroom")] == ["apply"]


def test_bad_input_is_a_clear_error(tmp_path, store):
    for bad in ("", "   ", "x" * 65, "a\nb"):
        with pytest.raises(RoomError, match="room name"):
            store.load(bad)
    with pytest.raises(RoomError, match="fir_db"):
        store.load("kitchen").changed(fir_db={"frequency_hz": [1000.0, 100.0], "gain_db": [0.0, 1.0]})
    with pytest.raises(RoomError):
        store.apply("kitchen", {"volume_db": 0}, "not a state")
    with pytest.raises(RoomError):
        store.history("kitchen", 0)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RoomStoreError, match="not a usable room store"):
        RoomStore(junk)


WRITER = """
import sys
sys.path.insert(0, {root!r})
from speaker.room import RoomStore, state_json
from tools.eq import Filter

store, room, i = RoomStore(sys.argv[1]), "kitchen", int(sys.argv[2])
print("C", state_json(store.load(room)), flush=True)
while True:
    i += 1
    cur = store.load(room)
    if i % 4 in (0, 1):
        new = cur.changed(filters=[Filter(type="peaking", frequency_hz=100 + i, gain_db=i % 13 - 6, q=1.0)],
                          now_playing=f"track {{i}}")
        print("P", state_json(new), flush=True)
        done = store.apply(room, new, f"step {{i}}")
    elif i % 4 == 2:
        print("P", state_json(cur.changed(volume_db=-30 + i % 25)), flush=True)
        done = store.set_volume(room, -30 + i % 25)[0]
    else:
        preview = store.undo_preview(room)
        print("P", state_json(cur if preview is None else preview), flush=True)
        done = store.undo(room) or cur
    print("C", state_json(done), flush=True)
"""


def test_kill_9_leaves_the_last_committed_state(tmp_path):
    """20 rounds: a writer process applies / sets volume / undoes as fast as it can and is killed with
    SIGKILL 0.05-0.4 s after it starts writing. Each time the store opens, integrity_check is ok, and the
    state is the last one the writer reported committed or the one it was writing; the last log row
    matches it (same transaction) and undo still works."""
    db, script = tmp_path / "rooms.sqlite", tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT)))
    rng, commits, outcomes = random.Random(13), 0, {"committed": 0, "pending": 0}
    for round_no in range(20):
        proc = subprocess.Popen([sys.executable, str(script), str(db), str(round_no * 100_000)],
                                stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline()
        assert first.startswith("C "), first
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines = [first] + [ln for ln in proc.stdout.read().splitlines(keepends=True) if ln.endswith("\n")]
        proc.stdout.close()
        last_c = max(i for i, ln in enumerate(lines) if ln.startswith("C "))
        committed = lines[last_c][2:].strip()
        pending = [ln[2:].strip() for ln in lines[last_c + 1:] if ln.startswith("P ")]
        commits += sum(ln.startswith("C ") for ln in lines) - 1
        with RoomStore(db) as store:
            assert store.integrity_check() == "ok"
            got = state_json(store.load("kitchen"))
            assert got in [committed, *pending], f"round {round_no}: state is neither committed nor pending"
            outcomes["committed" if got == committed else "pending"] += 1
            if store.history("kitchen", 1):
                assert state_json(store.history("kitchen", 1)[0].state) == got
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
    print(f"\nkill -9: 20 rounds, {commits} commits, final state = last committed {outcomes['committed']}x, "
          f"= the one being written {outcomes['pending']}x")
    assert commits >= 20
