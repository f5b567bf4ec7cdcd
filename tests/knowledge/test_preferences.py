"""knowledge.preferences: records, ratings, similarity, history amounts, profiles, isolation, WAL, recovery."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from knowledge.preferences import PreferenceRecord, PreferenceStore, ResultParams, WordAmount

NONE = ResultParams()


def harsh_params(amount, device="Apple AirPods Pro (2nd generation)"):
    return ResultParams(adjustments=[WordAmount(descriptor="harsh", direction="less", amount=amount)], target=device)


@pytest.fixture
def store(tmp_path, embedder):
    s = PreferenceStore(tmp_path / "prefs.sqlite", embedder=embedder)
    yield s
    s.close()


def test_default_path_is_under_sense_home(sense_home_dir, embedder):
    s = PreferenceStore(embedder=embedder)
    assert s.path == sense_home_dir / "preferences.sqlite" and s.path.exists()
    s.close()


def test_add_get_last_and_rate(store):
    rid = store.add("ann", "make the vocals less harsh", {"kind": "eq"}, [{"tool": "eq", "args": {}}],
                    harsh_params(0.6))
    rec = store.get("ann", rid)
    assert isinstance(rec, PreferenceRecord)
    assert (rec.request, rec.intent, rec.plan, rec.rating) == (
        "make the vocals less harsh", {"kind": "eq"}, [{"tool": "eq", "args": {}}], None)
    assert rec.params.adjustments[0].amount == 0.6 and rec.created_at.tzinfo is not None
    assert rec.params.target == "Apple AirPods Pro (2nd generation)"
    store.rate("ann", rid, 1)
    assert store.get("ann", rid).rating == 1
    second = store.add("ann", "more bass", {}, [], NONE, rating=-1)
    assert store.last("ann").id == second > rid
    assert store.last("nobody") is None


def test_numpy_values_are_stored_as_json(store):
    import numpy as np

    rid = store.add("ann", "less harsh", {"gains_db": np.zeros(3)}, [], harsh_params(float(np.float32(0.5))), rating=1)
    assert store.get("ann", rid).intent["gains_db"] == [0.0, 0.0, 0.0]
    assert store.history_amount("ann", "harsh", "less", "harsh")[0] == 0.5
    with pytest.raises(TypeError):
        store.add("ann", "x", {"bad": object()}, [], NONE)


def test_records_of_an_older_layout_still_read(store):
    """Rows written before typed records (extra keys such as "device") read as ResultParams, and their
    amounts (Audealize's scale, default 0.5) come back on the calibrated scale (default 1)."""
    with store._lock:
        store._conn.execute(
            "INSERT INTO records (user, request, intent, plan, params, rating, embedding, model_id, created_at)"
            " VALUES ('ann', 'old', '{}', '[]', ?, 1, ?, ?, '2026-11-24T00:00:00+00:00')",
            ('{"adjustments": [{"descriptor": "warm", "direction": "more", "amount": 0.7}], "device": "X"}',
             store._encode("old").tobytes(), store._get_embedder().model_id))
    record = store.last("ann")
    assert record.params.adjustments[0].amount == 0.7 and record.params.target is None
    assert record.params.adjustments[0].scale == "audealize" and record.params.adjustments[0].calibrated() == 1.4
    assert store.history_amount("ann", "warm", "more", "warmer")[0] == pytest.approx(1.4)


def test_bad_ratings_and_foreign_ids_are_rejected(store):
    rid = store.add("ann", "less harsh", {}, [], NONE)
    with pytest.raises(ValueError):
        store.rate("ann", rid, 5)
    with pytest.raises(ValueError):
        store.add("ann", "x", {}, [], NONE, rating=0)
    with pytest.raises(KeyError, match="bob"):
        store.rate("bob", rid, 1)
    with pytest.raises(KeyError):
        store.get("bob", rid)
    with pytest.raises(ValueError):
        store.add("", "x", {}, [], NONE)


def test_users_never_see_each_others_rows(store):
    a = store.add("ann", "make it less harsh", {}, [], harsh_params(0.3), rating=1)
    store.add("bob", "make it less harsh", {}, [], harsh_params(0.9), rating=1)
    store.own_device("bob", "Sony WH-1000XM4")
    assert [r.user for r, _ in store.similar("ann", "less harsh", k=10)] == ["ann"]
    amount, record = store.history_amount("ann", "harsh", "less", "less harsh")
    assert (amount, record.id) == (0.3, a)
    assert store.last("ann").id == a
    assert store.owned_devices("ann") == []
    assert store.similar("carol", "less harsh") == [] and store.history_amount("carol", "harsh", "less", "x") is None


def test_similar_ranks_by_meaning(store):
    store.add("ann", "more bass on this track", {}, [], NONE)
    harsh = store.add("ann", "the cymbals are too harsh", {}, [], NONE)
    store.add("ann", "use my airpods profile", {}, [], NONE)
    hits = store.similar("ann", "reduce the harshness of the highs", k=2)
    assert len(hits) == 2 and hits[0][0].id == harsh
    assert hits[0][1] > hits[1][1] and -1.0 <= hits[1][1] <= hits[0][1] <= 1.0 + 1e-6


def test_history_amount_uses_positively_rated_and_most_similar(store):
    store.add("ann", "make the vocals less harsh", {}, [], harsh_params(0.8), rating=-1)  # disliked
    store.add("ann", "make the vocals less harsh", {}, [], harsh_params(0.7))  # not rated
    assert store.history_amount("ann", "harsh", "less", "vocals harsh") is None
    cymbals = store.add("ann", "cymbals sound harsh, tame them", {}, [], harsh_params(0.4), rating=1)
    vocals = store.add("ann", "the singer's voice is harsh", {}, [], harsh_params(0.6), rating=1)
    assert store.history_amount("ann", "harsh", "less", "harsh cymbals")[1].id == cymbals
    amount, rec = store.history_amount("ann", "HARSH", "less", "harsh vocals from the singer")
    assert (amount, rec.id) == (0.6, vocals)
    assert store.history_amount("ann", "harsh", "more", "harsh vocals") is None
    assert store.history_amount("ann", "bright", "less", "harsh vocals") is None


def test_profiles(store):
    store.own_device("ann", "Apple AirPods Pro (2nd generation)")
    store.own_device("ann", "Sony WH-1000XM4")
    store.own_device("ann", "Apple AirPods Pro (2nd generation)")  # again: no duplicate
    assert store.owned_devices("ann") == ["Apple AirPods Pro (2nd generation)", "Sony WH-1000XM4"]
    store.disown_device("ann", "Apple AirPods Pro (2nd generation)")
    store.disown_device("ann", "never owned")
    assert store.owned_devices("ann") == ["Sony WH-1000XM4"]


def test_wal_mode_and_two_stores_on_one_file(tmp_path, embedder):
    path = tmp_path / "shared.sqlite"
    one, two = PreferenceStore(path, embedder=embedder), PreferenceStore(path, embedder=embedder)
    assert one._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first = one.add("ann", "less harsh please", {}, [], NONE)
    assert [r.id for r, _ in one.similar("ann", "harsh")] == [first]  # one's index is now built
    second = two.add("ann", "the vocals are harsh", {}, [], NONE)
    assert {r.id for r, _ in one.similar("ann", "harsh")} == {first, second}  # sees two's commit
    two.own_device("ann", "Apple AirPods")
    assert one.owned_devices("ann") == ["Apple AirPods"]
    one.close(), two.close()


def test_index_is_rebuilt_from_sqlite_after_a_crash(tmp_path, embedder):
    """A row committed by a process that died before touching any index is still found."""
    path = tmp_path / "crash.sqlite"
    alive = PreferenceStore(path, embedder=embedder)
    alive.add("ann", "more bass", {}, [], NONE)
    alive.similar("ann", "bass")  # index built
    blob = embedder.encode(["the hi-hats are harsh"])[0].tobytes()
    raw = sqlite3.connect(path)  # the "other process": commit, then vanish
    raw.execute(
        "INSERT INTO records (user, request, intent, plan, params, rating, embedding, model_id, created_at)"
        " VALUES ('ann', 'the hi-hats are harsh', '{}', '[]', '{}', NULL, ?, ?, '2026-11-24T00:00:00+00:00')",
        (blob, embedder.model_id),
    )
    raw.commit()
    raw.close()
    assert alive.similar("ann", "harsh hi-hats", k=1)[0][0].request == "the hi-hats are harsh"
    reopened = PreferenceStore(path, embedder=embedder)
    assert {r.request for r, _ in reopened.similar("ann", "x", k=10)} == {"more bass", "the hi-hats are harsh"}
    alive.close(), reopened.close()


def test_concurrent_writers(tmp_path, embedder):
    path = tmp_path / "threads.sqlite"
    stores = [PreferenceStore(path, embedder=embedder) for _ in range(2)]
    errors = []

    def write(s, user):
        try:
            for i in range(10):
                s.add(user, f"request {i}", {}, [], NONE)
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, u)) for s, u in zip(stores, ["ann", "bob"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(stores[0].similar("ann", "request", k=50)) == 10 and len(stores[1].similar("bob", "request", k=50)) == 10
    for s in stores:
        s.close()


# --- evidence for the personal model (schema version 1) ------------------------------------------------------

_SCHEMA_V0 = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, request TEXT NOT NULL, intent TEXT NOT NULL,
    plan TEXT NOT NULL, params TEXT NOT NULL, rating INTEGER CHECK (rating IN (-1, 1)), embedding BLOB NOT NULL,
    model_id TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE INDEX records_by_user ON records (user, id);
CREATE TABLE profile_devices (user TEXT NOT NULL, device TEXT NOT NULL, added_at TEXT NOT NULL, PRIMARY KEY (user, device));
"""


def _old_file(path, embedder):
    """A store file as today's code (schema version 0) writes it: three rated records, one unrated, one device."""
    raw = sqlite3.connect(path)
    raw.executescript(_SCHEMA_V0)
    rows = [
        ("ann", "warmer please", '{"adjustments": [{"descriptor": "warm", "direction": "more", "amount": 1.5,'
         ' "scale": "calibrated"}, {"descriptor": "bright", "direction": "less", "amount": 1.0, "scale": "calibrated"}]}', 1),
        ("ann", "less harsh", '{"adjustments": [{"descriptor": "harsh", "direction": "less", "amount": 0.25}]}', -1),
        ("ann", "not rated", '{"adjustments": [{"descriptor": "warm", "direction": "more", "amount": 1.0}]}', None),
        ("bob", "more zorblish", '{"adjustments": [{"descriptor": "zorblish", "direction": "more", "amount": 1.0}]}', 1),
    ]
    blob = embedder.encode(["x"])[0].tobytes()
    for user, request, params, rating in rows:
        raw.execute("INSERT INTO records (user, request, intent, plan, params, rating, embedding, model_id, created_at)"
                    " VALUES (?, ?, '{}', '[]', ?, ?, ?, ?, '2026-11-24T00:00:00+00:00')",
                    (user, request, params, rating, blob, embedder.model_id))
    raw.execute("INSERT INTO profile_devices VALUES ('ann', 'Sony WH-1000XM4', '2026-11-24T00:00:00+00:00')")
    raw.commit()
    raw.close()


def test_migration_of_an_old_file_keeps_records_and_yields_rating_evidence(tmp_path, embedder, data_dir):
    import numpy as np

    from knowledge.preferences import SCHEMA_VERSION, population_curve

    path = tmp_path / "old.sqlite"
    _old_file(path, embedder)
    store = PreferenceStore(path, embedder=embedder)
    assert store.schema_version() == SCHEMA_VERSION == 1
    assert [store.get("ann", i).request for i in (1, 2, 3)] == ["warmer please", "less harsh", "not rated"]
    assert store.get("bob", 4).rating == 1 and store.owned_devices("ann") == ["Sony WH-1000XM4"]
    assert store.history_amount("ann", "warm", "more", "warm")[0] == 1.5
    ev = store.evidence("ann")
    assert [(e.kind, e.word, e.direction, e.rating) for e in ev] == [
        ("rating", "warm", "more", 1), ("rating", "bright", "less", 1), ("rating", "harsh", "less", -1)]
    assert np.allclose(ev[0].setting_db, 1.5 * population_curve("warm"))
    assert np.allclose(ev[2].setting_db, 0.5 * population_curve("harsh"))  # Audealize's 0.25 = calibrated 0.5
    assert store.evidence("bob") == []  # a word the crowd data lacks has no curve: left out
    assert len(store.evidence("bob", curve=lambda w: np.ones(40))) == 1
    store.close()
    again = PreferenceStore(path, embedder=embedder)  # opening (migrating) again changes nothing
    assert again.evidence("ann") == ev
    again._conn.execute("PRAGMA user_version = 0")  # force the migration to run once more
    again._migrate()
    assert again.schema_version() == 1 and again._conn.execute("SELECT COUNT(*) FROM evidence").fetchone()[0] == 4
    assert again.evidence("ann") == ev
    again.close()


def test_a_crash_mid_migration_leaves_the_old_file_usable(tmp_path, embedder, monkeypatch):
    import knowledge.preferences as prefs

    path = tmp_path / "old.sqlite"
    _old_file(path, embedder)
    calls = []

    def crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    real = prefs._write_rating_evidence
    monkeypatch.setattr(prefs, "_write_rating_evidence", crash)
    with pytest.raises(RuntimeError):
        PreferenceStore(path, embedder=embedder)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 0
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'evidence'").fetchall() == []
    assert raw.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 4
    raw.close()
    monkeypatch.setattr(prefs, "_write_rating_evidence", real)
    store = PreferenceStore(path, embedder=embedder)
    assert store.schema_version() == 1 and len(store.evidence("ann")) == 3
    store.close()


def test_rate_writes_evidence_with_the_offset_heard_and_picks_are_stored(store, data_dir):
    import numpy as np

    from knowledge.preferences import population_curve

    offset = [0.5] * 40
    params = ResultParams(adjustments=[WordAmount(descriptor="Warm", direction="more", amount=2.0, offset_db=offset)])
    rid = store.add("ann", "much warmer", {}, [], params)
    assert store.evidence("ann") == []
    store.rate("ann", rid, 1)
    (ev,) = store.evidence("ann")
    assert ev.kind == "rating" and ev.rating == 1 and ev.word == "warm"
    assert np.allclose(ev.setting_db, 2.0 * (population_curve("warm") + 0.5))
    store.rate("ann", rid, -1)  # a re-rating replaces the evidence's rating, no second row
    assert [e.rating for e in store.evidence("ann")] == [-1]
    assert store.get("ann", rid).params.adjustments[0].offset_db == offset
    chosen, rejected = np.full(40, 1.0), [np.zeros(40), np.full(40, -1.0)]
    store.add_pick("ann", "Warm", "less", chosen, rejected, record_id=rid)
    pick = store.evidence("ann")[-1]
    assert (pick.kind, pick.word, pick.direction, pick.setting_db[0], len(pick.rejected_db)) == ("pick", "warm", "less", 1.0, 2)
    assert store.evidence("bob") == []
    with pytest.raises(ValueError):
        store.add_pick("ann", "warm", "more", chosen, [])
    rated_at_once = store.add("ann", "warmer", {}, [], params, rating=1)
    assert len(store.evidence("ann")) == 3 and store.get("ann", rated_at_once).rating == 1
