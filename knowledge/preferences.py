"""Per-user preference records (what was asked, what was done, how it was rated) and profiles.

SQLite (WAL mode) is the source of truth: one row per request with its MiniLM embedding as a
float32 blob. The per-user FAISS index used by :meth:`PreferenceStore.similar` is derived from
those rows: built on first use and topped up from SQLite before every search (rows are never
deleted and ids only grow), so a crash between a commit and an index update cannot leave the
index out of sync, and several PreferenceStore objects (or processes) can share one file.

Schema version 1 (``PRAGMA user_version``) adds the ``evidence`` table: what the personal EQ model
(:mod:`knowledge.personal`) learns from — a thumbs up/down on each tone word of a rated record (written in the same
transaction as the rating) and variant picks. Opening a version-0 file (the layout before) migrates it in one
transaction: every rated record's whole-mix tone words become rating evidence; a crash mid-way leaves the old file
as it was, and migrating again changes nothing (one evidence row per record and tone word, ``UNIQUE``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Literal

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from knowledge.config import sense_home
from knowledge.embeddings import EMBEDDING_DIM
from knowledge.personal import Evidence
from knowledge.words import AUDEALIZE_DEFAULT_AMOUNT

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    request TEXT NOT NULL,
    intent TEXT NOT NULL,      -- JSON object
    plan TEXT NOT NULL,        -- JSON list of objects
    params TEXT NOT NULL,      -- JSON object, e.g. {"adjustments": [...], "device": "..."}
    rating INTEGER CHECK (rating IN (-1, 1)),
    embedding BLOB NOT NULL,   -- float32 x 384, L2-normalised MiniLM embedding of request
    model_id TEXT NOT NULL,    -- embedding model that made it
    created_at TEXT NOT NULL   -- ISO 8601, UTC
);
CREATE INDEX IF NOT EXISTS records_by_user ON records (user, id);
CREATE TABLE IF NOT EXISTS profile_devices (
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (user, device)
);
"""

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of a current file; 0 = the layout before the evidence table."""

_EVIDENCE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('rating', 'pick')),
    word TEXT NOT NULL,        -- lower case
    direction TEXT NOT NULL CHECK (direction IN ('more', 'less')),
    amount REAL,               -- calibrated amount of a rated tone word (setting_db NULL: amount x (curve + offset))
    offset_db TEXT,            -- JSON 40 floats, the offset that was applied, or NULL
    setting_db TEXT,           -- JSON 40 floats in the word's "more" space, or NULL (see amount)
    rating INTEGER CHECK (rating IN (-1, 1)),
    rejected_db TEXT NOT NULL DEFAULT '[]',  -- JSON list of 40-float settings not picked
    record_id INTEGER,         -- the record rated (or the pick's record), or NULL
    item INTEGER,              -- index of the tone word in the record's adjustments (ratings), else NULL
    created_at TEXT NOT NULL   -- ISO 8601, UTC
)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS evidence_by_record ON evidence (record_id, item)",
    "CREATE INDEX IF NOT EXISTS evidence_by_user ON evidence (user, id)",
)

_EVIDENCE_COLUMNS = ("user, kind, word, direction, amount, offset_db, setting_db, rating, rejected_db, record_id, item,"
                     " created_at")

_COLUMNS = "id, user, request, intent, plan, params, rating, created_at"


class WordAmount(BaseModel):
    """A tone word as applied: ``{descriptor: "harsh", direction: "less", amount: 1.0, scale: "calibrated"}``.

    ``scale``: "calibrated" (amount 1 = the word's region moves TARGET_DB, :mod:`knowledge.words`) or
    "audealize" (records written before calibration: Audealize's amount, 0.5 its default).
    ``offset_db``: the personal or variant offset that was applied with it (40 floats, dB, Audealize's bands, the
    word's "more" space at amount 1), or None (none). The setting heard, in the "more" space, is taken as
    amount (calibrated) × (the word's population mean curve + offset_db) — what the rating evidence records.
    """

    model_config = ConfigDict(extra="ignore")
    descriptor: str
    direction: str
    amount: float
    scale: Literal["calibrated", "audealize"] = "calibrated"
    offset_db: list[float] | None = None

    def calibrated(self) -> float:
        """The amount on the calibrated scale."""
        return calibrated_amount(self.amount, self.scale)


def calibrated_amount(amount: float, scale: str | None) -> float:
    """An amount as stored → the calibrated scale (a row without a scale predates it: Audealize's)."""
    return amount if scale == "calibrated" else amount / AUDEALIZE_DEFAULT_AMOUNT


class BandGain(BaseModel):
    """An explicit EQ move as applied: ``{label: "250 Hz", gain_db: -3.0}`` (dB, capped)."""

    model_config = ConfigDict(extra="ignore")
    label: str
    gain_db: float


class StemParams(BaseModel):
    """One stem's move as applied (gain in dB, mute, solo, tone words on the stem)."""

    model_config = ConfigDict(extra="ignore")
    gain_db: float = 0.0
    mute: bool = False
    solo: bool = False
    adjustments: list[WordAmount] = Field(default_factory=list)


class ResultParams(BaseModel):
    """What was applied for one request: the part of a record the history reads.

    Attributes:
        target: device rendered (model name), or None.
        listening: the listening device, or None.
        adjustments: tone words on the whole mix (their amounts are what :meth:`PreferenceStore.history_amount` reuses).
        band_edits: explicit EQ moves.
        stems: per-stem moves, by stem name.
    """

    model_config = ConfigDict(extra="ignore")
    target: str | None = None
    listening: str | None = None
    adjustments: list[WordAmount] = Field(default_factory=list)
    band_edits: list[BandGain] = Field(default_factory=list)
    stems: dict[str, StemParams] = Field(default_factory=dict)


class PreferenceRecord(BaseModel):
    """One stored request of one user.

    Attributes:
        id: record id (unique in the file, increasing).
        user: owner.
        request: the user's words.
        intent: parsed intent (free JSON object).
        plan: the tool calls run (list of JSON objects).
        params: what was applied (device, tone words with amounts, band edits, stems).
        rating: -1 (bad), 1 (good) or None (not rated).
        created_at: UTC time it was stored.
    """

    id: int
    user: str
    request: str
    intent: dict[str, Any]
    plan: list[dict[str, Any]]
    params: ResultParams
    rating: int | None
    created_at: datetime


class PreferenceStore:
    """SQLite-backed store of preference records and owned devices, one file for all users.

    Args:
        path: SQLite file; default ``sense_home()/preferences.sqlite``.
        embedder: object with ``encode(list[str]) -> (n, 384)`` and ``model_id``
            (default :func:`get_embedder`, loaded on first need).
    Every method takes the user and only ever reads or writes that user's rows.
    """

    def __init__(self, path: Path | None = None, embedder=None):
        self.path = Path(path) if path is not None else sense_home() / "preferences.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._embedder = embedder
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._migrate()
        self._indices: dict[str, tuple[faiss.IndexIDMap2, int]] = {}  # user -> (index, last id in it)

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._conn.close()

    # --- records -----------------------------------------------------------------------------

    def add(
        self, user: str, request: str, intent: dict, plan: list[dict], params: ResultParams,
        rating: int | None = None,
    ) -> int:
        """Store one request with its embedding in one transaction.

        Args:
            intent, plan: JSON-serialisable (numpy numbers and Paths are converted).
            params: what was applied.
        Returns:
            the new record id.
        Raises:
            ValueError: empty user, or rating not in (-1, 1, None).
            TypeError: a value that cannot be stored as JSON.
        """
        _check_user(user)
        _check_rating(rating, allow_none=True)
        vector = self._encode(request)
        with self._transaction() as conn:
            created = _now()
            cur = conn.execute(
                "INSERT INTO records (user, request, intent, plan, params, rating, embedding, model_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user, request, _to_json(intent), _to_json(plan), params.model_dump_json(), rating,
                    vector.tobytes(), self._get_embedder().model_id, created,
                ),
            )
            record_id = int(cur.lastrowid)
            if rating is not None:
                _write_rating_evidence(conn, user, record_id, params, rating, created)
            return record_id

    def rate(self, user: str, record_id: int, rating: int) -> None:
        """Set the rating of one of ``user``'s records, and the rating evidence of its whole-mix tone words
        (one evidence row per tone word, updated on a re-rating), in one transaction.

        Raises:
            ValueError: rating not -1 or 1.
            KeyError: no record ``record_id`` belongs to ``user``.
        """
        _check_rating(rating, allow_none=False)
        with self._transaction() as conn:
            row = conn.execute("SELECT params FROM records WHERE id = ? AND user = ?", (record_id, user)).fetchone()
            if row is None:
                raise KeyError(f"user {user!r} has no preference record {record_id}")
            conn.execute("UPDATE records SET rating = ? WHERE id = ? AND user = ?", (rating, record_id, user))
            _write_rating_evidence(conn, user, record_id, _stored_params(row[0]), rating, _now())

    def add_pick(
        self, user: str, word: str, direction: str, chosen_db, rejected_db, record_id: int | None = None
    ) -> int:
        """Store a variant pick: ``chosen_db`` was preferred over each of ``rejected_db``.

        Args:
            word: the (population) word the variants are of.
            direction: "more" or "less", how the word was asked.
            chosen_db: 40 floats, dB, the picked setting in the word's "more" space (as variants are).
            rejected_db: list of 40-float settings (dB, "more" space) that were offered and not picked (>= 1).
            record_id: the record the variants belong to, or None.
        Returns:
            the evidence id.
        Raises:
            ValueError (pydantic ValidationError): empty user, bad direction, wrong band counts, nothing rejected.
        """
        _check_user(user)
        ev = Evidence(kind="pick", word=word.casefold(), direction=direction, setting_db=_floats(chosen_db),
                      rejected_db=[_floats(r) for r in rejected_db])
        with self._transaction() as conn:
            cur = conn.execute(
                f"INSERT INTO evidence ({_EVIDENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user, "pick", ev.word, ev.direction, None, None, json.dumps(ev.setting_db), None,
                 json.dumps(ev.rejected_db), record_id, None, ev.created_at.isoformat()),
            )
            return int(cur.lastrowid)

    def evidence(self, user: str, curve: Callable[[str], np.ndarray | None] | None = None) -> list[Evidence]:
        """``user``'s evidence for the personal EQ model, oldest first.

        A rating of a tone word stored by amount gets the setting amount × (curve(word) + offset_db) (the "more"
        space); words ``curve`` does not know (returns None) are left out.

        Args:
            curve: word (lower case) -> its population mean curve, float (40,) dB at the default amount, or None;
                default :func:`population_curve` (the crowd's English words).
        Raises:
            DataMissingError: the default curve needs the shared data and it is missing.
        """
        curve = curve or population_curve
        with self._lock:
            rows = self._conn.execute(
                "SELECT kind, word, direction, amount, offset_db, setting_db, rating, rejected_db, created_at"
                " FROM evidence WHERE user = ? ORDER BY id", (user,)
            ).fetchall()
        out = []
        for kind, word, direction, amount, offset, setting, rating, rejected, created in rows:
            if setting is not None:
                setting_db = json.loads(setting)
            else:
                mean = curve(word)
                if mean is None:
                    continue
                setting_db = (amount * (np.asarray(mean, dtype=np.float64) + np.asarray(json.loads(offset or "0")))).tolist()
            out.append(Evidence(kind=kind, word=word, direction=direction, setting_db=setting_db, rating=rating,
                                rejected_db=json.loads(rejected), created_at=datetime.fromisoformat(created)))
        return out

    def schema_version(self) -> int:
        """``PRAGMA user_version`` of the file (SCHEMA_VERSION once opened here)."""
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def get(self, user: str, record_id: int) -> PreferenceRecord:
        """One of ``user``'s records.

        Raises:
            KeyError: no record ``record_id`` belongs to ``user``.
        """
        rows = self._select("WHERE id = ? AND user = ?", (record_id, user))
        if not rows:
            raise KeyError(f"user {user!r} has no preference record {record_id}")
        return rows[0]

    def last(self, user: str) -> PreferenceRecord | None:
        """``user``'s most recent record, or None."""
        rows = self._select("WHERE user = ? ORDER BY id DESC LIMIT 1", (user,))
        return rows[0] if rows else None

    def similar(self, user: str, request: str, k: int = 5) -> list[tuple[PreferenceRecord, float]]:
        """``user``'s k records whose requests are closest in meaning to ``request``.

        Returns:
            up to k (record, cosine similarity in [-1, 1]) pairs, most similar first
            (FAISS inner product over L2-normalised MiniLM embeddings; other users' rows never used).
        """
        index = self._user_index(user)
        if index.ntotal == 0 or k <= 0:
            return []
        sims, ids = index.search(self._encode(request)[None, :], min(k, index.ntotal))
        found = [(int(i), float(s)) for i, s in zip(ids[0], sims[0]) if i >= 0]
        records = {r.id: r for r in self._select(
            f"WHERE user = ? AND id IN ({','.join('?' * len(found))})", (user, *[i for i, _ in found])
        )}
        return [(records[i], s) for i, s in found if i in records]

    def history_amount(
        self, user: str, descriptor: str, direction: str, request: str
    ) -> tuple[float, PreferenceRecord] | None:
        """The amount this user liked before for ``descriptor`` + ``direction``.

        Looks at ``user``'s records rated > 0 whose ``params["adjustments"]`` has an entry with
        that descriptor and direction (case-insensitive); of those, the one whose request is most
        similar to ``request`` (ties: the newest).
        Returns:
            (that adjustment's amount on the calibrated scale, the record), or None if there is none.
        """
        with self._lock:
            rows = self._conn.execute(
                f"SELECT json_extract(a.value, '$.amount'), json_extract(a.value, '$.scale'), r.embedding, r.model_id,"
                f" {', '.join('r.' + c for c in _COLUMNS.split(', '))}"
                " FROM records AS r, json_each(r.params, '$.adjustments') AS a"
                " WHERE r.user = ? AND r.rating > 0"
                " AND lower(json_extract(a.value, '$.descriptor')) = lower(?)"
                " AND lower(json_extract(a.value, '$.direction')) = lower(?)"
                " AND json_extract(a.value, '$.amount') IS NOT NULL"
                " ORDER BY r.id DESC",
                (user, descriptor, direction),
            ).fetchall()
        if not rows:
            return None
        query = self._encode(request)
        sims = [float(self._vector(row[2], row[3], row[6]) @ query) for row in rows]
        best = int(np.argmax(sims))  # first maximum = newest among equals
        return calibrated_amount(float(rows[best][0]), rows[best][1]), _record(rows[best][4:])

    # --- profile -----------------------------------------------------------------------------

    def own_device(self, user: str, device: str) -> None:
        """Add ``device`` (a model name) to ``user``'s profile; adding it again changes nothing.

        Raises:
            ValueError: empty user or device.
        """
        _check_user(user)
        if not device.strip():
            raise ValueError("device name is empty")
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO profile_devices (user, device, added_at) VALUES (?, ?, ?)",
                (user, device, _now()),
            )

    def owned_devices(self, user: str) -> list[str]:
        """``user``'s devices, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT device FROM profile_devices WHERE user = ? ORDER BY added_at, rowid", (user,)
            ).fetchall()
        return [r[0] for r in rows]

    def disown_device(self, user: str, device: str) -> None:
        """Remove ``device`` from ``user``'s profile (no error if it was not there)."""
        with self._lock:
            self._conn.execute("DELETE FROM profile_devices WHERE user = ? AND device = ?", (user, device))

    # --- internals ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self):
        """One write transaction (BEGIN IMMEDIATE … COMMIT; ROLLBACK on any error), under the lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Version 0 → 1 in one transaction: the evidence table, and rating evidence for every rated record."""
        if self.schema_version() >= SCHEMA_VERSION:
            return
        with self._transaction() as conn:
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= SCHEMA_VERSION:
                return  # another connection migrated it meanwhile
            for statement in _EVIDENCE_SCHEMA:
                conn.execute(statement)
            rated = conn.execute(
                "SELECT id, user, params, rating, created_at FROM records WHERE rating IS NOT NULL ORDER BY id"
            ).fetchall()
            for record_id, user, params, rating, created in rated:
                _write_rating_evidence(conn, user, record_id, _stored_params(params), rating, created, update=False)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _select(self, where: str, args: tuple) -> list[PreferenceRecord]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM records {where}", args).fetchall()
        return [_record(r) for r in rows]

    def _user_index(self, user: str) -> faiss.IndexIDMap2:
        """``user``'s FAISS index, topped up with rows committed since it was last read."""
        with self._lock:
            index, last_id = self._indices.get(user) or (faiss.IndexIDMap2(faiss.IndexFlatIP(EMBEDDING_DIM)), 0)
            rows = self._conn.execute(
                "SELECT id, embedding, model_id, request FROM records WHERE user = ? AND id > ? ORDER BY id",
                (user, last_id),
            ).fetchall()
            if rows:
                vectors = np.stack([self._vector(blob, mid, text) for _, blob, mid, text in rows])
                index.add_with_ids(vectors, np.array([r[0] for r in rows], dtype=np.int64))
                last_id = rows[-1][0]
            self._indices[user] = (index, last_id)
            return index

    def _vector(self, blob: bytes, model_id: str, request: str) -> np.ndarray:
        """The stored embedding, or a fresh one when it was made by another embedding model."""
        if model_id == self._get_embedder().model_id:
            return np.frombuffer(blob, dtype=np.float32)
        return self._encode(request)

    def _encode(self, text: str) -> np.ndarray:
        return self._get_embedder().encode([text])[0]

    def _get_embedder(self):
        if self._embedder is None:
            from knowledge.embeddings import get_embedder

            self._embedder = get_embedder()
        return self._embedder


def _write_rating_evidence(
    conn: sqlite3.Connection, user: str, record_id: int, params: ResultParams, rating: int, created: str,
    update: bool = True,
) -> None:
    """One rating evidence row per whole-mix tone word ("more"/"less") of a record; ``update``: a re-rating
    replaces the rating, else an existing row is kept (migration)."""
    rows = [
        (user, "rating", w.descriptor.casefold(), w.direction.lower(), w.calibrated(),
         None if w.offset_db is None else json.dumps(w.offset_db), None, rating, "[]", record_id, i, created)
        for i, w in enumerate(params.adjustments) if w.direction.lower() in ("more", "less")
    ]
    action = "UPDATE SET rating = excluded.rating" if update else "NOTHING"
    conn.executemany(
        f"INSERT INTO evidence ({_EVIDENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        f" ON CONFLICT (record_id, item) DO {action}", rows,
    )


@lru_cache(maxsize=1)
def _population_curves() -> dict[str, np.ndarray]:
    from knowledge.population import band_gains, load_english

    entries = load_english()
    return {e["word"].casefold(): g for e, g in zip(entries, band_gains(entries))}


def population_curve(word: str) -> np.ndarray | None:
    """The crowd's mean curve for an English word, float64 (40,) dB at the default amount, or None (unknown word).

    Source: Audealize / SocialEQ (:func:`knowledge.population.band_gains`). Raises DataMissingError without data.
    """
    return _population_curves().get(word.casefold())


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _record(row) -> PreferenceRecord:
    id_, user, request, intent, plan, params, rating, created_at = row
    return PreferenceRecord(
        id=id_, user=user, request=request, intent=json.loads(intent), plan=json.loads(plan),
        params=_stored_params(params), rating=rating, created_at=datetime.fromisoformat(created_at),
    )


def _stored_params(text: str) -> ResultParams:
    """A record's params; tone words stored before the calibrated scale carry Audealize's amounts."""
    data = json.loads(text)
    for words in [data.get("adjustments") or [], *[(st or {}).get("adjustments") or [] for st in (data.get("stems") or {}).values()]]:
        for word in words:
            word.setdefault("scale", "audealize")
    return ResultParams.model_validate(data)


def _to_json(value) -> str:
    """JSON text; numpy scalars/arrays become numbers/lists and Paths strings (the agent passes such values)."""

    def convert(obj):
        if isinstance(obj, (np.generic, np.ndarray)):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    return json.dumps(value, default=convert)


def _check_user(user: str) -> None:
    if not isinstance(user, str) or not user.strip():
        raise ValueError("user id is empty")


def _check_rating(rating: int | None, allow_none: bool) -> None:
    if rating is None and allow_none:
        return
    if rating not in (-1, 1):
        raise ValueError(f"rating must be -1 or 1, got {rating!r}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
