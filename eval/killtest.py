"""Crash test of the preference store: writers killed with SIGKILL while they write, then the store checked.

    python -m eval.killtest --rounds 300            # the full run (prints the counts; exit 1 on any failure)
    python -m eval.killtest --rounds 300 --json out/killtest.json

Each round starts a fresh writer process that opens :class:`knowledge.preferences.PreferenceStore` on one
SQLite file (WAL, ``synchronous=FULL``) and adds records (every third one is also rated) as fast as it can,
reporting each id only after ``add()`` / ``rate()`` returned. The parent kills it with SIGKILL at a random
moment (uniform in 0…``max_delay_s`` after the start: while it opens the file, inside a transaction or
between two), then reopens the file and checks:

* ``PRAGMA integrity_check`` is ``ok``;
* every reported (committed) record is there with exactly the content written, every reported rating is
  stored, and every other row is a complete record of some writer (content derived from its round and
  number, so a torn row would show);
* the store still works: the FAISS index built from the rows holds every row of the user exactly once and
  finds the newest request as its own nearest neighbour; a new record can be added.

Writers are forked by a multiprocessing *forkserver* that has imported the store once, so a round costs
milliseconds instead of an interpreter start. They embed with :class:`HashEmbedder`, a deterministic
384-dimensional vector per text, instead of MiniLM: the test is about SQLite/FAISS consistency after a crash,
not about the embedding, and a model load per writer would make a round take seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from knowledge.embeddings import EMBEDDING_DIM
from knowledge.preferences import PreferenceStore, ResultParams, WordAmount

USERS = ("alice", "bob")
WORDS = ("warm", "bright", "harsh", "muddy", "boomy", "airy", "punchy", "thin")
#: Every third record is rated after it is added (an UPDATE committed on its own).
RATE_EVERY = 3
#: Every this many rounds (and after the last) every row is looked up in the FAISS index, not only the newest.
WHOLE_INDEX_EVERY = 25


class HashEmbedder:
    """A deterministic stand-in for MiniLM: text → a unit float32 vector (384) seeded by its sha256.

    Equal texts give equal vectors, different texts nearly orthogonal ones, so a row's own request is its
    nearest neighbour (cosine 1.0).
    """

    model_id = "killtest-sha256-v1"

    def encode(self, texts: list[str]):
        """(n, 384) float32, rows L2-normalised."""
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(EMBEDDING_DIM)
            out[i] = v / np.sqrt((v * v).sum())
        return out


@dataclass(frozen=True)
class Expected:
    """What writer ``round`` wrote as its record number ``n``."""

    user: str
    request: str
    intent: dict
    plan: list
    params: ResultParams

    @classmethod
    def of(cls, round_: int, n: int) -> "Expected":
        word = WORDS[(round_ * 7 + n) % len(WORDS)]
        amount = round(0.5 + ((round_ * 31 + n * 17) % 10) / 4, 2)
        request = f"killtest r{round_} n{n}: make it {'less' if n % 2 else 'more'} {word} " + "x" * (n % 50)
        return cls(
            user=USERS[(round_ + n) % len(USERS)], request=request,
            intent={"action": "process", "round": round_, "n": n},
            plan=[{"tool": "equalize", "args": {"word": word, "amount": amount}}],
            params=ResultParams(target=f"Device {n}", adjustments=[WordAmount(
                descriptor=word, direction="less" if n % 2 else "more", amount=amount)]),
        )

    @staticmethod
    def rating(round_: int, n: int) -> int | None:
        return (1 if (round_ + n) % 2 else -1) if n % RATE_EVERY == 0 else None


def _write_forever(path: str, round_: int, conn) -> None:
    """The writer (a forked child): add records (rate every third) until killed; report each after it returned."""
    store = PreferenceStore(Path(path), embedder=HashEmbedder())
    n = 0
    while True:
        e = Expected.of(round_, n)
        record_id = store.add(e.user, e.request, e.intent, e.plan, e.params)
        conn.send_bytes(f"add {record_id} {n}".encode())
        rating = Expected.rating(round_, n)
        if rating is not None:
            store.rate(e.user, record_id, rating)
            conn.send_bytes(f"rate {record_id} {rating}".encode())
        n += 1


@dataclass
class RoundResult:
    """What one round's check found."""

    acked: int  # records the writer reported as added before it was killed
    integrity: str  # PRAGMA integrity_check's answer ("ok")
    lost: list[str] = field(default_factory=list)  # reported writes missing or changed
    broken: list[str] = field(default_factory=list)  # other failures (torn rows, index, store unusable)


@dataclass
class KillReport:
    """The whole run: counts and the first failures."""

    rounds: int
    integrity_errors: int
    lost_rows: int
    broken: int
    acked_rows: int  # records reported committed by writers (all checked)
    rows_committed: int  # rows in the file at the end (acked + committed just before a kill + the checks' own)
    ratings_acked: int
    early_kills: int  # rounds whose writer was killed before its first add() returned (opening, first write)
    wall_s: float
    database: str
    failures: list[str] = field(default_factory=list)

    @property
    def unreported(self) -> int:
        """Rows committed whose writer was killed before it could report them (the kill landed after COMMIT)."""
        return self.rows_committed - self.acked_rows - self.rounds

    @property
    def ok(self) -> bool:
        return self.integrity_errors == 0 and self.lost_rows == 0 and self.broken == 0

    def lines(self) -> list[str]:
        return [f"rounds            {self.rounds}", f"integrity errors  {self.integrity_errors}",
                f"lost rows         {self.lost_rows}", f"other failures    {self.broken}",
                f"rows committed    {self.rows_committed} ({self.acked_rows} reported by writers before the kill, "
                f"{self.ratings_acked} ratings; {self.unreported} committed but killed before reporting, "
                f"{self.rounds} by the checks)", f"early kills       {self.early_kills} (before the first write returned)",
                f"wall time         {self.wall_s:.1f} s",
                f"database          {self.database}", *self.failures[:10]]


def _drain(conn) -> list[tuple[str, int, int]]:
    """The writer's reports (kind, id, value) up to its death; a message cut by the kill is not one."""
    out = []
    while True:
        try:
            if not conn.poll(0):
                return out
            kind, a, b = conn.recv_bytes().decode().split()
        except (EOFError, OSError, ValueError):
            return out
        out.append((kind, int(a), int(b)))


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()


def _rows(path: Path) -> list[tuple]:
    """Every row as stored: (id, user, request, intent, plan, params, rating)."""
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        return conn.execute("SELECT id, user, request, intent, plan, params, rating FROM records ORDER BY id").fetchall()
    finally:
        conn.close()


def _writer_of(request: str) -> tuple[int, int] | None:
    """(round, n) from a request ``"killtest r{round} n{n}: …"``, or None."""
    head = request.split(":", 1)[0].split()
    try:
        return int(head[1][1:]), int(head[2][1:])
    except (IndexError, ValueError):
        return None


@dataclass
class Checker:
    """What the writers reported so far, and each row's stored text once it was checked in full.

    A row is compared field by field with what its writer wrote (through :meth:`PreferenceStore.get`) the first
    time it is seen; later rounds compare its stored text with that, so a row changed by a later crash shows
    while a round stays O(rows).
    """

    acked: dict[int, tuple[int, int]] = field(default_factory=dict)  # record id -> (round, n)
    ratings: dict[int, int] = field(default_factory=dict)  # record id -> rating reported
    seen: dict[int, tuple] = field(default_factory=dict)  # record id -> stored row, checked in full

    def check(self, path: Path, round_: int, whole_index: bool = True) -> RoundResult:
        """Reopen ``path`` after round ``round_``'s crash and check it (see the module docstring; ``whole_index``:
        compare every row with the FAISS index, not only the newest)."""
        result = RoundResult(acked=len(self.acked), integrity=_integrity(path))
        if result.integrity != "ok":
            return result
        store = PreferenceStore(path, embedder=HashEmbedder())
        try:
            rows = _rows(path)
            self._check_rows(store, rows, result)
            _check_index(store, rows, round_, whole_index, result)
        except (sqlite3.Error, KeyError, ValueError) as exc:
            result.broken.append(f"round {round_}: the store failed after the crash: {exc}")
        finally:
            store.close()
        return result

    def _check_rows(self, store: PreferenceStore, rows: list[tuple], result: RoundResult) -> None:
        by_id = {row[0]: row for row in rows}
        for record_id, (round_, n) in self.acked.items():
            if record_id not in by_id:
                result.lost.append(f"record {record_id} (round {round_}, n {n}) missing")
        for record_id, rating in self.ratings.items():
            if record_id in by_id and by_id[record_id][6] != rating:
                result.lost.append(f"rating of record {record_id} lost")
        for record_id, row in by_id.items():
            if record_id in self.seen:
                if row[:6] != self.seen[record_id][:6]:
                    (result.lost if record_id in self.acked else result.broken).append(f"record {record_id} changed")
                continue
            writer = _writer_of(row[2])
            e = Expected.of(*writer) if writer else None
            rec = store.get(row[1], record_id)
            if e is None or (rec.user, rec.request, rec.intent, rec.plan, rec.params) != (
                    e.user, e.request, e.intent, e.plan, e.params):
                (result.lost if record_id in self.acked else result.broken).append(
                    f"record {record_id}: stored {row[1]!r}, {row[2][:40]!r} is not what its writer wrote")
            self.seen[record_id] = row


def _check_index(store: PreferenceStore, rows: list[tuple], round_: int, whole: bool, result: RoundResult) -> None:
    """The FAISS index built from the rows finds each user's newest row as itself (``whole``: and holds every
    row exactly once: a search over all of them, O(rows), so not every round); add() still works."""
    ids = {user: [] for user in USERS}
    for row in rows:
        ids[row[1]].append(row[0])
    for user in USERS:
        if not ids[user]:
            continue
        newest = store.get(user, ids[user][-1])
        found = store.similar(user, newest.request, k=len(ids[user]) + 5 if whole else 3)
        if whole and sorted(r.id for r, _ in found) != ids[user]:
            result.broken.append(f"round {round_}: FAISS index of {user} has {len(found)} rows, SQLite {len(ids[user])}")
        elif not found or found[0][0].id != newest.id or found[0][1] < 0.999:
            result.broken.append(f"round {round_}: newest record of {user} is not its own nearest neighbour")
    e = Expected.of(-1, round_)  # the checker's own record: the store still takes writes
    record_id = store.add(e.user, e.request, e.intent, e.plan, e.params)
    if store.get(e.user, record_id).request != e.request:
        result.broken.append(f"round {round_}: a record added after the crash reads back changed")


def _one_round(ctx, path: Path, round_: int, delay_s: float) -> list[tuple[str, int, int]]:
    """Start a writer, SIGKILL it after ``delay_s``, return what it reported."""
    receive, send = ctx.Pipe(duplex=False)
    writer = ctx.Process(target=_write_forever, args=(str(path), round_, send), daemon=True)
    writer.start()
    send.close()
    time.sleep(delay_s)
    writer.kill()
    writer.join()
    reports = _drain(receive)
    receive.close()
    return reports


def run(rounds: int, folder: Path | None = None, *, max_delay_s: float = 0.2, seed: int = 0,
        progress: bool = False) -> KillReport:
    """``rounds`` kill rounds on a new store in ``folder`` (default: a new temp folder).

    Args:
        rounds: writers to start and kill.
        folder: where the SQLite file goes (use a real disk: fsync matters).
        max_delay_s: each writer is killed uniformly 0…this many seconds after its start.
        seed: the kill moments' random seed.
        progress: show a progress bar (tqdm, on stderr).
    Returns:
        a :class:`KillReport` (``ok``: no integrity error, lost row or other failure).
    """
    from tqdm import tqdm

    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="sense-killtest-"))
    path = folder / "preferences.sqlite"
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["knowledge.preferences"])  # (eval.killtest: imported as the writers' module)
    rng = random.Random(seed)
    checker = Checker()
    errors = lost = broken = early = 0
    failures: list[str] = []
    start = time.perf_counter()
    bar = tqdm(range(rounds), desc="kill rounds", unit="round", disable=not progress, file=sys.stderr)
    for round_ in bar:
        reports = _one_round(ctx, path, round_, rng.uniform(0.0, max_delay_s))
        early += not any(kind == "add" for kind, _, _ in reports)
        for kind, record_id, value in reports:
            if kind == "add":
                checker.acked[record_id] = (round_, value)
            else:
                checker.ratings[record_id] = value
        result = checker.check(path, round_, whole_index=round_ % WHOLE_INDEX_EVERY == 0 or round_ == rounds - 1)
        errors += result.integrity != "ok"
        lost += len(result.lost)
        broken += len(result.broken)
        failures += ([f"round {round_}: integrity_check: {result.integrity}"] if result.integrity != "ok" else []) \
            + result.lost + result.broken
        bar.set_postfix(rows=len(checker.acked), errors=errors, lost=lost)
    conn = sqlite3.connect(path)
    try:
        committed = conn.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        conn.close()
    return KillReport(rounds, errors, lost, broken, len(checker.acked), committed, len(checker.ratings), early,
                      round(time.perf_counter() - start, 2), str(path), failures)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.killtest``: run, print the counts; exit status 1 on any failure."""
    parser = argparse.ArgumentParser(prog="python -m eval.killtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="writers to kill (default 300)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the SQLite file (default: a new temp folder)")
    parser.add_argument("--max-delay", type=float, default=0.2, help="kill within this many seconds of a start")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    report = run(args.rounds, args.dir, max_delay_s=args.max_delay, seed=args.seed, progress=True)
    print("\n".join(report.lines()))
    if args.json is not None:
        from tools.atomic import replace_file

        data = {**asdict(report), "unreported": report.unreported, "ok": report.ok}
        replace_file(args.json, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    from eval.killtest import main as _main  # the writers are pickled by reference: eval.killtest, not __main__

    sys.exit(_main())
