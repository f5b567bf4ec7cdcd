"""The translation report: a CSV (one row per track x device) and an HTML page with a device x track
grid of small band-balance plots (matplotlib PNGs inlined as data URIs), both written atomically
and never over an existing file (a taken name becomes ``translate-1.*``, ``translate-2.*`` ...).
"""

from __future__ import annotations

import base64
import csv
import html
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from tools.atomic import write_new_file  # noqa: E402
from translate.render import OCTAVE_BANDS_HZ, RenderResult  # noqa: E402

PLOT_RANGE_DB = 12.0  # the grid's plots share this y range (+-dB), so cells compare at a glance
_SCALARS = ("lufs_in", "lufs_device", "lufs_out", "true_peak_in_dbtp", "true_peak_device_dbtp", "true_peak_dbtp",
            "limiter_gain_reduction_db", "render_s", "worker")


@dataclass
class RunInfo:
    """How the results were made, for the report header.

    Attributes:
        engine: e.g. 'serial', 'dask LocalCluster (2 workers)', 'dask tcp://10.0.0.5:8786'.
        method: dsp | demt.  wall_s: the whole run (renders and transfers), seconds.
        excerpt: e.g. 'whole tracks' or '30 s from 0 s'.
    """

    engine: str
    method: str
    wall_s: float
    excerpt: str


@dataclass
class ReportPaths:
    """The files written: ``html`` and ``csv``."""

    html: Path
    csv: Path


def csv_header() -> list[str]:
    """Column names: track, device, kind, type, method, duration_s, one ``band_<label>_db`` per octave band, scalars."""
    return (["track", "device", "kind", "type", "method", "duration_s"]
            + [f"band_{label}_db" for label in OCTAVE_BANDS_HZ] + list(_SCALARS))


def _csv_row(r: RenderResult) -> list:
    return ([r.track, r.device, r.kind, r.type, r.method, repr(r.duration_s)]
            + [repr(r.band_balance_db[label]) for label in OCTAVE_BANDS_HZ]
            + [repr(v) if isinstance(v, float) else v for v in (getattr(r, name) for name in _SCALARS)])


def _write_csv(results: list[RenderResult], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header())
        writer.writerows(_csv_row(r) for r in results)


class _BarPlot:
    """One small reused figure: octave-band balance as bars, rendered to PNG bytes."""

    def __init__(self):
        self.fig, self.ax = plt.subplots(figsize=(2.0, 1.1), dpi=80)
        labels = list(OCTAVE_BANDS_HZ)
        self.bars = self.ax.bar(range(len(labels)), [0.0] * len(labels), width=0.8)
        self.ax.axhline(0.0, color="0.3", linewidth=0.6)
        self.ax.set_ylim(-PLOT_RANGE_DB, PLOT_RANGE_DB)
        self.ax.set_xticks(range(0, len(labels), 3), [labels[i] for i in range(0, len(labels), 3)], fontsize=6)
        self.ax.tick_params(axis="y", labelsize=6)
        self.fig.subplots_adjust(left=0.17, right=0.98, top=0.95, bottom=0.2)

    def png(self, balance: dict[str, float]) -> bytes:
        for bar, label in zip(self.bars, OCTAVE_BANDS_HZ):
            value = max(-PLOT_RANGE_DB, min(PLOT_RANGE_DB, balance[label]))
            bar.set_height(value)
            bar.set_color("#c0392b" if value < 0 else "#2471a3")
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png")
        return buffer.getvalue()

    def close(self) -> None:
        plt.close(self.fig)


def _cell(r: RenderResult, plot: _BarPlot) -> str:
    image = base64.b64encode(plot.png(r.band_balance_db)).decode("ascii")
    title = html.escape(", ".join(f"{k} Hz {v:+.1f} dB" for k, v in r.band_balance_db.items()))
    return (f'<td><img src="data:image/png;base64,{image}" title="{title}" alt="band balance"><br>'
            f"{r.lufs_device:.1f} LUFS · TP {r.true_peak_device_dbtp:+.1f}→{r.true_peak_dbtp:+.1f} dBTP</td>")


def _grid(results: list[RenderResult]) -> str:
    tracks = list(dict.fromkeys(r.track for r in results))
    by_cell = {(r.device, r.track): r for r in results}
    devices = list(dict.fromkeys((r.device, r.kind, r.type) for r in results))
    head = "".join(f"<th>{html.escape(t)}</th>" for t in tracks)
    rows, plot = [], _BarPlot()
    try:
        for name, kind, type_ in devices:
            cells = "".join(_cell(by_cell[(name, t)], plot) if (name, t) in by_cell else "<td></td>" for t in tracks)
            kind_text = kind if type_ == kind else f"{kind}, {type_}"
            rows.append(f"<tr><th>{html.escape(name)}<br><small>{kind_text}</small></th>{cells}</tr>")
    finally:
        plot.close()
    return f"<table><tr><th>device</th>{head}</tr>{''.join(rows)}</table>"


def _page(results: list[RenderResult], info: RunInfo) -> str:
    n_devices = len({r.device for r in results})
    mean_s = sum(r.render_s for r in results) / max(len(results), 1)
    inputs = "; ".join(f"{html.escape(r.track)}: {r.lufs_in:.1f} LUFS, TP {r.true_peak_in_dbtp:+.1f} dBTP"
                       for r in {r.track: r for r in results}.values())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>SENSE translation report</title>
<style>body{{font-family:sans-serif;font-size:13px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px;vertical-align:top;font-size:11px}}th{{text-align:left}}
tr:first-child th{{position:sticky;top:0;background:#fff}}</style></head><body>
<h1>Translation report</h1>
<p>{len({r.track for r in results})} track(s) × {n_devices} device(s) = {len(results)} renders ({info.method},
{html.escape(info.excerpt)}) on {html.escape(info.engine)}: {info.wall_s:.1f} s in all, {mean_s:.2f} s per
track-device render.</p>
<p>Each plot: energy change per octave band (31.5 Hz–16 kHz), output vs original, relative to the median band,
after the product's loudness match (ITU-R BS.1770) and true-peak limit (−1 dBTP); y range ±{PLOT_RANGE_DB:g} dB,
blue up, red down. Under it: loudness of the device render before matching, and its true peak before → after
the limiter. Tracks: {inputs}. The numbers are in the CSV beside this page.</p>
{_grid(results)}
</body></html>
"""


def _free_stem(folder: Path, stem: str) -> str:
    n, candidate = 0, stem
    while (folder / f"{candidate}.html").exists() or (folder / f"{candidate}.csv").exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def write_report(results: list[RenderResult], folder: str | Path, info: RunInfo) -> ReportPaths:
    """Write ``translate.csv`` and ``translate.html`` into ``folder`` (created if missing).

    Args:
        results: renders, track-major (as the runners return them).
        folder: output folder.
        info: how the run was made (header of the page).
    Returns:
        ReportPaths; free names ``translate-N.*`` when ``translate.*`` exist (nothing is overwritten).
    Raises:
        OutputExistsError: another writer took a name between the check and the write.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, "translate")
    csv_path = write_new_file(folder / f"{stem}.csv", lambda tmp: _write_csv(results, tmp))
    page = _page(results, info)
    html_path = write_new_file(folder / f"{stem}.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return ReportPaths(html_path, csv_path)


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """The report's CSV rows as dicts of strings (column names from :func:`csv_header`)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
