"""The web app under load and attack: N concurrent sessions on 127.0.0.1, timed, then isolation checks.

    python -m webui.loadtest --sessions 8 --turns 3 [--llm] [--concurrency 1] [--clip-s 15] [--json out.json]

Starts the app in this process on a free localhost port (its own session folders and preference
store in a temporary folder) and runs ``--sessions`` gradio_client sessions in threads. Each uploads
its own clip (cut from a different track, or a different part of one, of ``SENSE_DATA_DIR/music``)
and sends ``--turns`` requests; the first names a band no other session uses (``cut 423 Hz by 3 dB``)
so a leak would show. It reports send → playable (the processed file downloaded and decodable) p50/p95,
the time each turn waited in Gradio's queue, the planner queue's waits, and then checks:

- isolation: each session's folder, chat (server and client side), traces and preference records hold
  only its own upload and requests; no session is shown another session's id (its files' only name);
- file routes: ``/gradio_api/file=`` refuses absolute paths outside the session folders, ``../``
  traversal (plain and URL-encoded), directories, symlinks out of a session folder and guessed session
  ids, while a session's own file is served (the control);
- inputs: a session that names another session's file as its upload is refused.

Exit status 1 when a turn failed, a leak was found or an attack got through.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import soundfile as sf

from knowledge.config import data_dir

#: Requests after the first (the first is the session's own band cut); the LLM run swaps in one
#: phrasing the rules cannot read, so every session asks the planner.
FOLLOW_UPS = ("less harsh", "more", "warmer", "undo", "a bit brighter")
LLM_REQUEST = "the cymbals feel a little piercing to me, could you soften them"
PLANNER_WAIT = re.compile(r"Waiting for the planner: (\d+) ahead")


@dataclass
class Turn:
    """One timed turn of one session.

    Attributes:
        request: what was sent.
        send_to_playable_s: from submitting to the processed file on the client's disk and decodable, s.
        queue_wait_s: from submitting until Gradio started processing it, s.
        queue_rank: the highest position in Gradio's queue seen while waiting (0: first in line).
        planner_ahead: the highest "waiting for the planner: n ahead" seen (0: never waited).
        ok: processed audio came back.
        error: what went wrong, or None.
    """

    request: str
    send_to_playable_s: float = 0.0
    queue_wait_s: float = 0.0
    queue_rank: int = 0
    planner_ahead: int = 0
    ok: bool = False
    error: str | None = None


@dataclass
class SessionRun:
    """What one client session sent and got back."""

    index: int
    clip: Path
    marker: str
    requests: list[str]
    turns: list[Turn] = field(default_factory=list)
    received: list[str] = field(default_factory=list)  # every text the client got: chat, traces, file names
    rating: str = ""
    record_id: int | None = None


@dataclass
class Finding:
    """One isolation or attack check. ``ok`` False is a leak or an attack that got through."""

    check: str
    session: int
    ok: bool
    detail: str


@dataclass
class LoadReport:
    """The load test's numbers and checks (all times in seconds)."""

    sessions: int
    turns_per_session: int
    planner: str
    concurrency: int
    wall_s: float
    turns_ok: int
    turns_failed: int
    send_to_playable: dict[str, float]
    queue_wait: dict[str, float]
    max_queue_rank: int
    planner_queue: dict[str, float]
    planner_waits_shown: int
    findings: list[Finding]

    @property
    def leaks(self) -> list[Finding]:
        """The checks that failed."""
        return [f for f in self.findings if not f.ok]

    def text(self) -> str:
        """A few lines for the terminal and the closing note."""
        p, q, pq = self.send_to_playable, self.queue_wait, self.planner_queue
        checks: dict[str, list[int]] = {}
        for f in self.findings:
            checks.setdefault(f.check, [0, 0])[0 if f.ok else 1] += 1
        lines = [
            f"load test: {self.sessions} sessions x {self.turns_per_session} turns on 127.0.0.1, planner "
            f"{self.planner}, concurrency {self.concurrency}: {self.turns_ok} turns ok, {self.turns_failed} failed, "
            f"wall {self.wall_s:.1f} s",
            f"send -> playable: p50 {p['p50']:.2f} s, p95 {p['p95']:.2f} s, max {p['max']:.2f} s",
            f"Gradio queue wait: p50 {q['p50']:.2f} s, p95 {q['p95']:.2f} s, max {q['max']:.2f} s; "
            f"highest queue position seen {self.max_queue_rank}",
            f"planner queue: {pq.get('completions', 0):.0f} completions, at most {pq.get('max_pending', 0):.0f} "
            f"pending, wait p50 {pq.get('wait_p50', 0):.2f} s, max {pq.get('wait_max', 0):.2f} s; "
            f"'waiting for the planner' shown in {self.planner_waits_shown} turns",
            "checks: " + ", ".join(f"{name} {ok}/{ok + bad}" for name, (ok, bad) in sorted(checks.items())),
            f"leaks / attacks through: {len(self.leaks)}",
        ]
        lines += [f"  LEAK {f.check} (session {f.session}): {f.detail}" for f in self.leaks]
        return "\n".join(lines)


def percentiles(values: list[float]) -> dict[str, float]:
    """{"p50", "p95", "max", "n"} of ``values`` (nearest-rank p95; zeros when empty)."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)
    rank95 = max(0, min(len(ordered) - 1, int(round(0.95 * len(ordered) + 0.4999)) - 1))
    return {"p50": round(statistics.median(ordered), 3), "p95": round(ordered[rank95], 3),
            "max": round(ordered[-1], 3), "n": len(ordered)}


# --- clips and requests ---------------------------------------------------------------------------

def make_clips(n: int, folder: Path, clip_s: float = 15.0) -> list[Path]:
    """``n`` distinct WAV clips: session i gets track ``i % tracks`` of ``SENSE_DATA_DIR/music``, from an
    offset that moves on each time a track comes round again.

    Returns:
        Paths ``folder/sNN-<track>.wav`` (16-bit), each at most ``clip_s`` seconds.
    Raises:
        knowledge.config.DataMissingError: no data; ValueError: no music tracks.
    """
    tracks = sorted(p for p in (data_dir() / "music").iterdir() if p.suffix.lower() in (".ogg", ".flac", ".wav"))
    if not tracks:
        raise ValueError("no music tracks in the data dir")
    clips = []
    for i in range(n):
        track = tracks[i % len(tracks)]
        info = sf.info(str(track))
        frames = int(min(clip_s, info.duration) * info.samplerate)
        start = int((2.0 + clip_s * (i // len(tracks))) * info.samplerate) % max(1, info.frames - frames + 1)
        samples, rate = sf.read(str(track), dtype="float32", start=start, frames=frames, always_2d=True)
        name = re.sub(r"[^\w-]+", "_", track.name.split(".")[0])[:24]
        clip = folder / f"s{i:02d}-{name}.wav"
        sf.write(clip, samples, rate, subtype="PCM_16")
        clips.append(clip)
    return clips


def session_requests(i: int, turns: int, use_llm: bool) -> tuple[str, list[str]]:
    """(the session's marker band, its requests): a cut at a frequency only this session uses, then follow-ups."""
    marker = f"{411 + 12 * i} Hz"
    rest = list(FOLLOW_UPS)
    if use_llm:
        rest[0] = LLM_REQUEST
    return marker, [f"cut {marker} by 3 dB", *rest][:max(1, turns)]


# --- one client session ---------------------------------------------------------------------------

def _texts(value) -> list[str]:
    """Every string inside a returned value (chat messages, trace JSON, file paths)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)] + [str(k) for k in value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return []


def _timed_turn(client, http: httpx.Client, run: SessionRun, text: str, upload) -> Turn:
    """Submit one turn, follow its status (queue position, progress texts) and time it to playable: the
    processed file fetched over HTTP, as a browser's player does, and decodable."""
    turn = Turn(text)
    start = time.perf_counter()
    job = client.submit(text, upload, api_name="/chat")
    processing = None
    while not job.done():
        status = job.status()
        if status.code.name == "IN_QUEUE" and status.rank is not None:
            turn.queue_rank = max(turn.queue_rank, int(status.rank))
        if processing is None and status.code.name in ("PROCESSING", "ITERATING", "PROGRESS"):
            processing = time.perf_counter()
        for unit in status.progress_data or []:
            found = PLANNER_WAIT.search(unit.desc or "")
            if found:
                turn.planner_ahead = max(turn.planner_ahead, int(found.group(1)))
        time.sleep(0.05)
    try:
        chat, _, _, _, processed, _, trace, downloads, rating, *_variants = job.result()
        if processed:
            _fetch_playable(http, processed, run.clip.parent / f"{run.clip.stem}-turn{len(run.turns)}.wav")
        turn.send_to_playable_s = time.perf_counter() - start
        turn.queue_wait_s = (processing or time.perf_counter()) - start
        run.received += _texts([chat, trace, downloads, rating, processed])
        last = _texts(chat[-1:])
        turn.ok = not any(t.startswith("⚠️") for t in last) and (bool(processed) or text == "undo")
        if not turn.ok:
            turn.error = " ".join(last)[:200]
    except Exception as exc:  # noqa: BLE001 - a failed turn is a finding, not a crash of the test
        turn.error = f"{type(exc).__name__}: {exc}"[:200]
    return turn


def _fetch_playable(http: httpx.Client, processed: dict, dest: Path) -> None:
    """Download a returned file by its URL and open it as audio (raises when either fails)."""
    reply = http.get(processed["url"])
    reply.raise_for_status()
    dest.write_bytes(reply.content)
    sf.info(str(dest))


def connect(url: str, auth: tuple[str, str] | None = None):
    """A gradio_client ``Client`` that keeps what the server sent (files are not downloaded: paths and URLs)."""
    from gradio_client import Client

    return Client(url, auth=auth, verbose=False, download_files=False, httpx_kwargs={"timeout": 120})


def run_session(client, url: str, run: SessionRun, auth: tuple[str, str] | None = None) -> SessionRun:
    """One client session: upload the clip with the first request, the rest as follow-ups, then rate 👍.
    A failure ends the session; its remaining turns count as failed."""
    from gradio_client import handle_file

    http = httpx.Client(timeout=120, cookies=_auth_cookies(url, auth))
    try:
        for k, text in enumerate(run.requests):
            run.turns.append(_timed_turn(client, http, run, text, handle_file(str(run.clip)) if k == 0 else None))
    except Exception as exc:  # noqa: BLE001 - reported as failed turns
        run.turns += [Turn(text, error=f"{type(exc).__name__}: {exc}"[:200]) for text in run.requests[len(run.turns):]]
    finally:
        http.close()
    try:
        run.rating = str(client.predict(api_name="/rate_up"))
        found = re.search(r"#(\d+)", run.rating)
        run.record_id = int(found.group(1)) if found else None
    except Exception as exc:  # noqa: BLE001
        run.rating = f"{type(exc).__name__}: {exc}"
    return run


# --- isolation checks (server side, after the load) -----------------------------------------------

def match_sessions(app, runs: list[SessionRun]) -> tuple[dict[int, object], list[Finding]]:
    """Each client run's server :class:`webui.session.Session`: the one whose folder holds its clip."""
    found, findings = {}, []
    for run in runs:
        owners = [s for s in app.sessions.values() if (s.folder / run.clip.name).is_file()]
        ok = len(owners) == 1
        findings.append(Finding("one folder per upload", run.index, ok, f"{len(owners)} folders hold {run.clip.name}"))
        if owners:
            found[run.index] = owners[0]
    return found, findings


def check_folders(runs: list[SessionRun], sessions: dict) -> list[Finding]:
    """Every file in a session's folder derives from its own upload (its clip's name is in the path)."""
    findings = []
    for run in runs:
        s = sessions.get(run.index)
        if s is None:
            continue
        others = [r.clip.stem for r in runs if r is not run]
        for path in sorted(p for p in s.folder.rglob("*") if p.is_file()):
            rel = str(path.relative_to(s.folder))
            ok = run.clip.stem in rel and not any(o in rel for o in others)
            findings.append(Finding("session folder holds only its own files", run.index, ok, rel))
    return findings


def check_chats(runs: list[SessionRun], sessions: dict) -> list[Finding]:
    """Server-side history and everything the client received name only this session's clip and band."""
    findings = []
    for run in runs:
        s = sessions.get(run.index)
        server = _texts(s.history) if s is not None else []
        for where, texts in (("server history", server), ("client received", run.received)):
            blob = "\n".join(texts)
            foreign = [r.clip.stem for r in runs if r is not run and r.clip.stem in blob]
            foreign += [f"cut {r.marker}" for r in runs if r is not run and f"cut {r.marker}" in blob]
            own = run.clip.stem in blob and f"cut {run.marker}" in blob
            findings.append(Finding(f"{where} holds only its own turns", run.index, own and not foreign,
                                    f"foreign: {foreign}" if foreign else ("ok" if own else "own turns missing")))
    return findings


def check_ids(runs: list[SessionRun], sessions: dict) -> list[Finding]:
    """No client was shown another session's id (the only name under which its files are served)."""
    findings = []
    for run in runs:
        blob = "\n".join(run.received)
        seen = [i for i, s in sessions.items() if i != run.index and s.id in blob]
        mine = sessions.get(run.index)
        shown_own = mine is not None and mine.id in blob
        findings.append(Finding("never shown another session's id", run.index, not seen,
                                f"saw sessions {seen}" if seen else f"own id shown: {shown_own}"))
    return findings


def check_preferences(prefs_path: Path, runs: list[SessionRun], sessions: dict) -> list[Finding]:
    """Each session's user has only records of its own requests (a follow-up is stored as "<settings> → more"),
    none naming another session's band, and its 👍 landed on its own record."""
    with sqlite3.connect(f"file:{prefs_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, user, request, rating FROM records").fetchall()
    findings = []
    users = {i: s.user for i, s in sessions.items()}
    for run in runs:
        user = users.get(run.index)
        mine = [r for r in rows if r[1] == user]
        others = [f"cut {r.marker}" for r in runs if r is not run]
        stray = [r for r in mine if not any(q in r[2] for q in run.requests) or any(o in r[2] for o in others)]
        rated = [r for r in rows if r[0] == run.record_id]
        ok = bool(mine) and not stray and len(set(users.values())) == len(users) and \
            bool(rated) and rated[0][1] == user and rated[0][3] == 1
        findings.append(Finding("preferences hold only its own requests", run.index, ok,
                                f"{len(mine)} records, foreign {[r[2] for r in stray]}, rated #{run.record_id}"))
    return findings


# --- attacks on the file routes and inputs ----------------------------------------------------------

def _file_url(base: str, path: str, encode_all: bool = False) -> str:
    return f"{base}gradio_api/file={quote(path, safe='' if encode_all else '/')}"


def attack_paths(app, run: SessionRun, session, prefs_path: Path) -> dict[str, str]:
    """Paths a session's client might try through ``/gradio_api/file=``: name → path (all must be refused).

    A symlink in a session folder is resolved by Gradio before its allowed-paths check, so one pointing out
    of the sessions' folder is refused; one pointing to another session's file would be served, which is
    why the app never makes links there (uploads are copied, results written in place).
    """
    root, folder = app.root, session.folder
    paths = {
        "absolute /etc/passwd": "/etc/passwd",
        "preference store": str(prefs_path),
        "server source file": str(Path(__file__).resolve()),
        "data dir track": str(next((data_dir() / "music").glob("*.ogg"))),
        "traversal from own folder": f"{folder}/../../{prefs_path.name}",
        "deep traversal": f"{folder}/" + "../" * 12 + "etc/passwd",
        "sessions root (directory)": str(root),
        "own folder (directory)": str(folder),
        "guessed session id": f"{root}/{secrets.token_hex(16)}/{run.clip.name}",
        "symlink out of own folder": str(folder / "link-out.wav"),
    }
    return paths


def check_file_routes(url: str, app, runs: list[SessionRun], sessions: dict, prefs_path: Path,
                      auth_cookies: dict | None = None) -> list[Finding]:
    """Every attack path refused (plain and URL-encoded) while each session's own result is served."""
    findings = []
    with httpx.Client(timeout=30, cookies=auth_cookies or {}) as http:
        for run in runs:
            s = sessions.get(run.index)
            if s is None:
                continue
            own = next(iter(sorted(s.folder.glob("*-sense*.wav"))), None)
            if own is not None:
                code = http.get(_file_url(url, str(own))).status_code
                findings.append(Finding("own result served (control)", run.index, code == 200, f"HTTP {code}"))
            links = _plant_symlinks(s)
            try:
                for name, path in attack_paths(app, run, s, prefs_path).items():
                    codes = {http.get(_file_url(url, path, enc)).status_code for enc in (False, True)}
                    findings.append(Finding("file route refuses", run.index, 200 not in codes,
                                            f"{name}: HTTP {sorted(codes)}"))
            finally:
                for link in links:
                    link.unlink(missing_ok=True)
    return findings


def _plant_symlinks(session) -> list[Path]:
    """A symlink out of a session folder to /etc/passwd (as if something had put it there)."""
    out = session.folder / "link-out.wav"
    out.symlink_to("/etc/passwd")
    return [out]


def check_foreign_input(url: str, app, runs: list[SessionRun], sessions: dict,
                        auth: tuple[str, str] | None = None) -> list[Finding]:
    """A page that names another session's file as its upload (a raw queue request, as a hand-made client
    on another machine would send; gradio_client would upload the file's bytes instead) is refused, and no
    copy is made."""
    if len(sessions) < 2:
        return []
    victim_run = runs[-1]
    victim = sessions.get(victim_run.index)
    target = next(iter(sorted(victim.folder.glob("*-sense*.wav"))), None) if victim else None
    if target is None:
        return []
    before = {p for s in app.sessions.values() if s is not victim for p in s.folder.rglob("*")}
    upload = {"path": str(target), "meta": {"_type": "gradio.FileData"}, "orig_name": target.name}
    done = raw_event(url, "chat", ["less harsh", upload, None], _auth_cookies(url, auth))
    if done.get("success"):
        outcome = " ".join(_texts(done.get("output", {}).get("data", [[]])[0][-1:]))
    else:
        outcome = "refused by Gradio: " + str(done.get("output", {}).get("error") or done.get("title") or done)
    after = {p for s in app.sessions.values() if s is not victim for p in s.folder.rglob("*")}
    copied = [p for p in after - before if victim_run.clip.stem in p.name]
    ok = not copied and ("not one of your files" in outcome or outcome.startswith("refused by Gradio"))
    return [Finding("another session's file as input refused", victim_run.index, ok, outcome[:160])]


def raw_event(url: str, api_name: str, data: list, cookies: dict | None = None, timeout_s: float = 120.0) -> dict:
    """Send one event through Gradio's queue by hand (``/gradio_api/queue/join``, then its event stream).

    Returns:
        The ``process_completed`` message (``success``, ``output``), or ``{"success": False, "title": …}``
        when the join itself was refused.
    """
    with httpx.Client(timeout=timeout_s, cookies=cookies or {}) as http:
        config = http.get(f"{url}config").json()
        fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
        session = secrets.token_hex(8)
        joined = http.post(f"{url}gradio_api/queue/join", json={
            "data": data, "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None})
        if joined.status_code != 200:
            return {"success": False, "title": f"HTTP {joined.status_code}: {joined.text[:120]}"}
        with http.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as events:
            for line in events.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
    return {"success": False, "title": "no process_completed message"}


# --- the run --------------------------------------------------------------------------------------

def _run_clients(url: str, work: Path, n: int, turns: int, use_llm: bool, clip_s: float,
                 auth: tuple[str, str] | None) -> list[SessionRun]:
    """``n`` client sessions at once, one thread each; returns their runs in session order."""
    clips = make_clips(n, work, clip_s)
    runs = []
    for i, clip in enumerate(clips):
        marker, requests = session_requests(i, turns, use_llm)
        runs.append(SessionRun(i, clip, marker, requests))
    clients = [connect(url, auth) for _ in runs]  # one after another: a page load is not what is measured
    threads = [threading.Thread(target=run_session, args=(client, url, run, auth), name=f"session-{run.index}")
               for client, run in zip(clients, runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


def _checks(url: str, app, runs: list[SessionRun], prefs_path: Path, auth) -> list[Finding]:
    sessions, findings = match_sessions(app, runs)
    findings += check_file_routes(url, app, runs, sessions, prefs_path, _auth_cookies(url, auth))
    findings += check_foreign_input(url, app, runs, sessions, auth)
    findings += check_folders(runs, sessions)
    findings += check_chats(runs, sessions)
    findings += check_ids(runs, sessions)
    findings += check_preferences(prefs_path, runs, sessions)
    return findings


def _auth_cookies(url: str, auth: tuple[str, str] | None) -> dict:
    """The login cookies for the file routes when the app needs a password."""
    if auth is None:
        return {}
    reply = httpx.post(f"{url}login", data={"username": auth[0], "password": auth[1]}, timeout=30)
    return dict(reply.cookies)


def run_load(rt, work: Path, *, sessions: int = 8, turns: int = 3, concurrency: int = 1, clip_s: float = 15.0,
             use_llm: bool = False, auth: tuple[str, str] | None = None) -> LoadReport:
    """Serve the app on a free 127.0.0.1 port, run ``sessions`` client sessions at once, then the checks.

    Args:
        rt: a loaded runtime (:func:`webui.server.load_runtime`); its preference store gets the ratings.
        work: an empty folder for the clips and session folders.
        sessions, turns: how many sessions at once and turns each.
        concurrency: the app's ``--concurrency``.
        clip_s: length of each session's clip, seconds.
        use_llm: the second request is one only the planner reads.
        auth: (user, password) to serve with a login (the clients log in).
    Returns:
        The :class:`LoadReport`.
    """
    from agent.llm_queue import PlannerQueue
    from webui.bench import free_port
    from webui.chat import SenseApp
    from webui.server import launch

    app = SenseApp(rt, sessions_root=work / "sessions", concurrency=concurrency)
    queue = rt.llm if isinstance(rt.llm, PlannerQueue) else None
    waits_before = len(queue.stats.waits_s) if queue else 0
    port = free_port()
    demo = launch(app, port=port, block=False, quiet=True, auth=auth)
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    try:
        runs = _run_clients(url, work, sessions, turns, use_llm, clip_s, auth)
        wall = time.perf_counter() - start
        findings = _checks(url, app, runs, Path(rt.prefs.path), auth)
    finally:
        demo.close()
        app.close()
    return _report(app, runs, wall, findings, queue, waits_before)


def _report(app, runs: list[SessionRun], wall: float, findings: list[Finding], queue, waits_before: int) -> LoadReport:
    turns = [t for r in runs for t in r.turns]
    done = [t for t in turns if t.ok]
    planner_queue: dict[str, float] = {}
    if queue is not None:
        waits = queue.stats.waits_s[waits_before:]
        planner_queue = {"completions": len(waits), "max_pending": queue.stats.max_pending,
                         "wait_p50": percentiles(waits)["p50"], "wait_max": percentiles(waits)["max"]}
    return LoadReport(
        sessions=len(runs), turns_per_session=max((len(r.turns) for r in runs), default=0), planner=app.planner,
        concurrency=app.concurrency, wall_s=round(wall, 2), turns_ok=len(done), turns_failed=len(turns) - len(done),
        send_to_playable=percentiles([t.send_to_playable_s for t in done]),
        queue_wait=percentiles([t.queue_wait_s for t in done]), max_queue_rank=max((t.queue_rank for t in turns), default=0),
        planner_queue=planner_queue, planner_waits_shown=sum(t.planner_ahead > 0 for t in turns), findings=findings)


def main(argv: list[str] | None = None) -> int:
    """``python -m webui.loadtest``: run, print the report (and write it as JSON); 1 on a failure or leak."""
    parser = argparse.ArgumentParser(description="SENSE web app under load and attack (127.0.0.1 only).")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--llm", action="store_true", help="with the planner model (the second request needs it)")
    parser.add_argument("--model", default=None, help="planner model name or .gguf path")
    parser.add_argument("--concurrency", type=int, default=1, help="the app's --concurrency")
    parser.add_argument("--clip-s", type=float, default=15.0, help="seconds of audio per session")
    parser.add_argument("--password", default=None, help="serve with a login (user 'sense') and log the clients in")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    from webui.server import load_runtime

    with tempfile.TemporaryDirectory(prefix="sense-load-") as tmp:
        work = Path(tmp)
        rt = load_runtime(no_llm=not args.llm, model=args.model, prefs_path=work / "prefs.sqlite")
        report = run_load(rt, work, sessions=args.sessions, turns=args.turns, concurrency=args.concurrency,
                          clip_s=args.clip_s, use_llm=args.llm,
                          auth=("sense", args.password) if args.password else None)
        rt.prefs.close()
    print(report.text())
    if args.json:
        from tools.atomic import replace_file

        text = json.dumps(asdict(report), indent=2)
        replace_file(args.json, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return 0 if report.turns_failed == 0 and not report.leaks else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
