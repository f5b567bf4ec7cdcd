"""The full translation run: tracks × every device, serially and on local Dask clusters of 1 and 2
workers; checks every cluster result equals the serial one and reports the times.

    python -m translate.bench [--seconds 30] [--devices all] [--runs serial,1,2] [--out out/translate-bench] [TRACK ...]

Default tracks: three pieces from the data set's ``music/`` folder. Each run's results and times
are kept in ``OUT/run-<name>.json`` (with the settings they were made with), so the runs can be
made in separate invocations (``--runs serial`` then ``--runs 1,2``); every invocation prints the
markdown summary of all runs in OUT made with the same settings. The 2-worker run also writes its
report (``translate.html``, ``translate.csv``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pydantic import TypeAdapter

from tools.atomic import replace_file
from tools.errors import SenseError, one_line
from translate.render import RenderResult

DEFAULT_TRACKS = ("Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
                  "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
                  "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg")
RUNS = ("serial", "1", "2")
_RESULTS = TypeAdapter(list[RenderResult])


def _default_tracks(root: Path) -> list[Path]:
    music = root / "music"
    found = [music / name for name in DEFAULT_TRACKS if (music / name).is_file()]
    return found or sorted(music.glob("*.ogg"))[:3]


def _one_run(run: str, tracks, refs, method, root) -> tuple[list[RenderResult], dict]:
    """(results, times): ``startup_s`` (cluster start) and ``wall_s`` (renders incl. transfers)."""
    from translate.cluster import open_client, run_cluster, run_serial

    began = time.perf_counter()
    if run == "serial":
        results = run_serial(tracks, refs, method, root)
        return results, {"startup_s": 0.0, "wall_s": time.perf_counter() - began}
    with open_client(None, int(run)) as client:
        client.wait_for_workers(int(run), timeout=60)
        started = time.perf_counter()
        results = run_cluster(client, tracks, refs, method, root)
        return results, {"startup_s": started - began, "wall_s": time.perf_counter() - started}


def _save(out: Path, run: str, settings: dict, results: list[RenderResult], times: dict) -> None:
    data = {"settings": settings, "times": times, "results": _RESULTS.dump_python(results, mode="json")}
    replace_file(out / f"run-{run}.json", lambda tmp: tmp.write_text(json.dumps(data)))


def _saved(out: Path, settings: dict) -> dict[str, tuple[list[RenderResult], dict]]:
    """The runs in ``out`` made with ``settings``: name -> (results, times)."""
    found = {}
    for run in RUNS:
        path = out / f"run-{run}.json"
        if path.is_file():
            data = json.loads(path.read_text())
            if data["settings"] == settings:
                found[run] = (_RESULTS.validate_python(data["results"]), data["times"])
    return found


def summarize(settings: dict, runs: dict) -> dict:
    """Counts, times per track-device, equality with the serial run, speed-up of 2 workers vs 1."""
    serial = runs.get("serial", (None,))[0]
    rows = {}
    for name, (results, times) in runs.items():
        differ = None if serial is None or name == "serial" else (
            sum(a.numbers() != b.numbers() for a, b in zip(serial, results)) + abs(len(serial) - len(results)))
        rows[name] = {**times, "renders": len(results), "per_render_s": times["wall_s"] / len(results),
                      "mean_render_s": sum(r.render_s for r in results) / len(results),
                      "workers_used": len({r.worker for r in results}), "differ_from_serial": differ}
    any_run = next(iter(runs.values()))[0]
    summary = {**settings, "devices": len({r.device for r in any_run}),
               "headphones": len({r.device for r in any_run if r.kind == "headphone"}),
               "speakers": len({r.device for r in any_run if r.kind == "speaker"}), "runs": rows}
    if {"1", "2"} <= set(rows):
        summary["speedup_2_vs_1"] = rows["1"]["wall_s"] / rows["2"]["wall_s"]
    return summary


def markdown(s: dict) -> str:
    """The summary as markdown (for docs/RELIABILITY.md)."""
    lines = [f"{len(s['tracks'])} tracks ({s['seconds'] or 'whole'} s each) × {s['devices']} devices "
             f"({s['headphones']} headphones, {s['speakers']} speakers), {s['method']}", "",
             "| run | renders | start-up s | wall s | s per track-device (wall) | mean render s | equal to serial |",
             "|---|---|---|---|---|---|---|"]
    for name, r in s["runs"].items():
        label = "serial (in process)" if name == "serial" else f"LocalCluster, {name} worker(s)"
        same = {None: "–", 0: "yes"}.get(r["differ_from_serial"], f"no ({r['differ_from_serial']} differ)")
        lines.append(f"| {label} | {r['renders']} | {r['startup_s']:.1f} | {r['wall_s']:.1f} | {r['per_render_s']:.3f} "
                     f"| {r['mean_render_s']:.3f} | {same} |")
    if "speedup_2_vs_1" in s:
        lines.append(f"\nspeed-up, 2 workers vs 1: {s['speedup_2_vs_1']:.2f}×")
    return "\n".join(lines)


def run(tracks: list[Path], devices: str, seconds: float | None, out: Path, demt: bool, runs: list[str]) -> dict:
    """Make the asked runs (saving each), then summarize every run in ``out`` with these settings."""
    from knowledge.config import data_dir
    from translate.cli import _load
    from translate.report import RunInfo, write_report

    root, refs, loaded = _load(tracks or _default_tracks(data_dir()), devices, seconds, 0.0)
    method = "demt" if demt else "dsp"
    settings = {"tracks": [t.name for t in loaded], "seconds": seconds, "method": method,
                "device_names": [r.name for r in refs]}
    for name in runs:
        results, times = _one_run(name, loaded, refs, method, root)
        _save(out, name, settings, results, times)
        print(f"run {name}: {len(results)} renders in {times['wall_s']:.1f} s", file=sys.stderr)
        if name == "2":
            excerpt = "whole tracks" if seconds is None else f"{seconds:g} s from 0 s"
            paths = write_report(results, out, RunInfo("dask LocalCluster (2 workers)", method, times["wall_s"], excerpt))
            print(f"report: {paths.html}, {paths.csv}", file=sys.stderr)
    summary = summarize(settings, _saved(out, settings))
    summary.pop("device_names")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tracks", nargs="*", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0, help="excerpt length; 0 = whole tracks")
    parser.add_argument("--devices", default="all")
    parser.add_argument("--demt", action="store_true")
    parser.add_argument("--runs", default="serial,1,2", help="comma-separated: serial, 1, 2 (workers)")
    parser.add_argument("--out", type=Path, default=Path("out/translate-bench"))
    args = parser.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not set(runs) <= set(RUNS):
        parser.error(f"--runs takes {', '.join(RUNS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        summary = run(args.tracks, args.devices, args.seconds or None, args.out, args.demt, runs)
    except SenseError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(markdown(summary))
    return 0 if all(r["differ_from_serial"] in (None, 0) for r in summary["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
