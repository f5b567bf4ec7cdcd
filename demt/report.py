"""`sense demt eval`: run every measurement of docs/DEMT.md and write it.

Expected layout of ``runs`` (what docs/DEMT.md's "How to reproduce" creates):
    runs/main/last.pt, runs/main/step<k>.pt   the main run (full pool, FiLM)
    runs/nofilm/last.pt                       ablation: no FiLM, stopped at step k
    runs/pool1/last.pt                        ablation: embedding pool of 1, stopped at step k
    runs/fewshot/<slug>-p02/last.pt, -p05     few-shot adaptation of a held-out device
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from demt.data import Recipe
from demt.devices import load_devices, split_devices
from demt.evaluate import demt_system, evaluate, summarise

PAPER = {"snr_db": 19.56, "stoi_pct": 98.91, "rmse": 0.45, "nofilm_snr_db": 2.31, "pool1_snr_db": 3.50}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")


def _load(path: Path):
    from demt.infer import load_checkpoint

    return load_checkpoint(path)


def _fmt(v, nd=2):
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"


def full_evaluation(checkpoint: Path | None, runs: Path | None, report: Path, results: Path | None = None,
                    per_device: int = 2, threads: int = 1, quick: bool = False, seed: int = 0) -> Path:
    """Measure and write the report; returns its path. See the module doc for ``runs``."""
    torch.set_num_threads(threads)
    t_start = time.time()
    main = _load(checkpoint) if checkpoint is not None else _load(runs / "main" / "last.pt")
    recipe_path = main.folder / "recipe.json"
    recipe = Recipe.from_json(json.loads(recipe_path.read_text())) if recipe_path.is_file() else Recipe()
    devices = load_devices()
    seen, held = split_devices(devices, seed)
    seen_names = {d.name for d in seen}
    res: dict = {"per_device": per_device, "seed": seed}
    eval_devices = seen if quick else devices
    rows = baseline_rows(runs, eval_devices, recipe, seed, per_device, seen_names)
    rows += evaluate({"demt": demt_system(main)}, eval_devices, recipe, seed, per_device, seen=seen_names, progress=True)
    res["main_rows"] = rows
    res["main_summary"] = summarise(rows, ("system", "seen"))
    res["main_by_type"] = summarise(rows, ("system", "seen", "type"))
    res["main_by_device"] = summarise(rows, ("system", "device", "type", "seen"))
    if runs is not None and not quick:
        arows, k = ablation_rows(runs, devices, recipe, seed, seen_names)
        res["ablation_step"] = k
        res["ablation_rows"] = arows
        res["ablation_summary"] = summarise(arows, ("system", "seen"))
        res["ablation_earlier"] = {}
        for f in sorted(runs.glob("ablation_rows_step*.json")):
            step = int(re.sub(r"\D", "", f.stem.split("step")[-1]))
            if step != k:
                res["ablation_earlier"][step] = summarise(json.loads(f.read_text()), ("system", "seen"))
        few = []
        fdir = runs / "fewshot"
        res["fewshot_init"] = {}
        for d in held:
            variants, init = {}, None
            for tag, pct in (("p02", 2), ("p05", 5)):
                p = fdir / f"{slug(d.name)}-{tag}" / "last.pt"
                if p.is_file():
                    variants[f"{pct} %"] = _load(p)
                    info = json.loads((p.parent / "train.json").read_text())
                    init = info.get("init_from") or init
            if not variants:
                continue
            # zero-shot = the checkpoint the adaptation started from (like with like)
            variants = {"zero-shot": _load(Path(init)) if init else main, **variants}
            res["fewshot_init"][d.name] = init
            for vname, m in variants.items():
                for r in evaluate({"demt": demt_system(m)}, [d], recipe, seed, 2 * per_device, seen=seen_names):
                    few.append(r | {"system": vname})
            few += [r | {"system": "DSP transfer"} for r in
                    evaluate({"dsp": None}, [d], recipe, seed, 2 * per_device, seen=seen_names)]
        res["fewshot_rows"] = few
        res["fewshot_summary"] = summarise(few, ("device", "system")) if few else []
    from demt.bench import measure_rtf

    res["rtf"] = measure_rtf(threads=2, model=main)
    torch.set_num_threads(threads)
    res["eval_seconds"] = time.time() - t_start
    res["checkpoint"] = str(main.folder)
    train_json = main.folder / "train.json"
    res["train"] = json.loads(train_json.read_text()) if train_json.is_file() else {}
    if results is None:
        from knowledge.config import cache_dir

        results = cache_dir() / "demt" / "DEMT.json"
        results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(res, indent=1, default=str))
    report.write_text(render(res, recipe, seen, held))
    return report


def baseline_rows(runs: Path | None, devices, recipe: Recipe, seed: int, per_device: int, seen_names) -> list[dict]:
    """Identity and DSP rows (they do not depend on the model), cached in ``runs/baseline_rows.json``."""
    key = json.loads(json.dumps({"seed": seed, "per_device": per_device, "devices": [d.name for d in devices],
                                 "recipe": recipe.to_json()}))
    cache = runs / "baseline_rows.json" if runs is not None else None
    if cache is not None and cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["rows"]
    rows = evaluate({"identity": None, "dsp": None}, devices, recipe, seed, per_device, seen=seen_names)
    if cache is not None:
        cache.write_text(json.dumps({"key": key, "rows": rows}))
    return rows


def ablation_rows(runs: Path, devices, recipe: Recipe, seed: int, seen_names: set[str]) -> tuple[list[dict], int | None]:
    """Rows of the ablation models (1 excerpt per device), cached in ``runs/ablation_rows.json``
    (reused while no checkpoint is newer than it)."""
    abl, k = {}, None
    for name in ("nofilm", "pool1"):
        p = runs / name / "last.pt"
        if p.is_file():
            k = torch.load(p, map_location="cpu", weights_only=False)["step"]
            abl[name] = p
    if k is not None and (runs / "main" / f"step{k}.pt").is_file():
        abl = {"full": runs / "main" / f"step{k}.pt", **abl}
    cache = runs / "ablation_rows.json"
    if abl and cache.is_file() and all(cache.stat().st_mtime > p.stat().st_mtime for p in abl.values()):
        return json.loads(cache.read_text()), k
    arows = []
    for name, p in abl.items():
        arows += [r | {"system": name} for r in
                  evaluate({"demt": demt_system(_load(p))}, devices, recipe, seed, 1, seen=seen_names)]
    if arows:
        cache.write_text(json.dumps(arows))
    return arows, k


def _get(summary, **kw):
    for r in summary:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return {}


def acceptance(res: dict) -> list[tuple[str, bool | None, str]]:
    """(item, passed or None when not measured, numbers) for the issue's acceptance list."""
    s = res["main_summary"]
    m = _get(s, system="demt", seen=True)
    dsp = _get(s, system="dsp", seen=True)
    out = [("seen devices: SNR >= 19.56 dB", m.get("snr_db", -1) >= PAPER["snr_db"],
            f"DeMT {_fmt(m.get('snr_db'))} dB (DSP {_fmt(dsp.get('snr_db'))} dB)"),
           ("seen devices: STOI >= 98.91 %", m.get("stoi_pct", -1) >= PAPER["stoi_pct"],
            f"DeMT {_fmt(m.get('stoi_pct'))} % (DSP {_fmt(dsp.get('stoi_pct'))} %)")]
    a = res.get("ablation_summary") or []
    full, nof, p1 = (_get(a, system=n, seen=True) for n in ("full", "nofilm", "pool1"))
    if full and nof:
        out.append(("no-FiLM clearly worse", full["snr_db"] - nof["snr_db"] >= 1.0,
                    f"{_fmt(nof['snr_db'])} vs {_fmt(full['snr_db'])} dB (step {res.get('ablation_step')})"))
    else:
        out.append(("no-FiLM clearly worse", None, "not measured"))
    if full and p1:
        fh, ph = _get(a, system="full", seen=False), _get(a, system="pool1", seen=False)
        out.append(("pool of 1 worse than full pool", p1["snr_db"] < full["snr_db"],
                    f"seen {_fmt(p1['snr_db'])} vs {_fmt(full['snr_db'])} dB; held-out {_fmt(ph.get('snr_db'))} vs {_fmt(fh.get('snr_db'))} dB"))
    else:
        out.append(("pool of 1 worse than full pool", None, "not measured"))
    fs = res.get("fewshot_summary") or []
    devs = sorted({r["device"] for r in fs})
    if devs:
        gains = [(_get(fs, device=d, system="2 %").get("snr_db", np.nan) - _get(fs, device=d, system="zero-shot")["snr_db"])
                 for d in devs]
        out.append(("few-shot 2 % better than zero-shot", bool(np.nanmin(gains) > 0),
                    ", ".join(f"{d}: {g:+.2f} dB" for d, g in zip(devs, gains))))
    else:
        out.append(("few-shot 2 % better than zero-shot", None, "not measured"))
    r = res["rtf"]
    out.append((">= 10x real time (stereo 44.1 kHz, CPU)", r["rtf_x"] >= 10,
                f"{r['rtf_x']:.1f}x ({r['threads']} threads, {r['audio_s']:.0f} s in {r['wall_s']:.2f} s)"))
    return out


def rerender(results: Path, report: Path, seed: int = 0) -> Path:
    """Write the report again from a saved results JSON (after editing the prose), measuring nothing."""
    res = json.loads(Path(results).read_text())
    recipe_path = Path(res["checkpoint"]) / "recipe.json"
    recipe = Recipe.from_json(json.loads(recipe_path.read_text())) if recipe_path.is_file() else Recipe()
    seen, held = split_devices(load_devices(), seed)
    report.write_text(render(res, recipe, seen, held))
    return report


def render(res: dict, recipe: Recipe, seen, held) -> str:
    from demt.docs_text import DISCUSSION, INTRO, METHOD, RECIPE_TEXT, REPRO

    L = [INTRO, "", "## Acceptance (issue 6)", "", "| item | result | numbers |", "|---|---|---|"]
    for item, ok, nums in acceptance(res):
        L.append(f"| {item} | {'pass' if ok else ('not measured' if ok is None else '**fail**')} | {nums} |")
    tr = res.get("train") or {}
    if tr.get("train_seconds"):
        L += ["", f"Shipped checkpoint: {tr.get('step')} training steps in {tr['train_seconds'] / 60:.0f} min of wall "
              "time on 1 thread of the 2-core CPU (shared with other jobs); float16 weights, "
              "`demt/checkpoints/small/`."]
    L += ["", "## Main results (simulated test set)", "",
          f"Test tracks never used in training; {res['per_device']} stereo excerpts of 4 s per device; "
          f"{len(seen)} seen devices, {len(held)} held-out devices never seen in training "
          f"({', '.join(d.name for d in held)}). Every system sees only the catalogue curve of the device.", "",
          "| system | devices | n | SNR (dB) | spectral RMSE (dB) | STOI (%) |", "|---|---|---|---|---|---|",
          f"| DeMT, paper (6 real devices, recorded) | seen | – | {PAPER['snr_db']} | {PAPER['rmse']} (their unit) | {PAPER['stoi_pct']} |"]
    names = {"demt": "DeMT (this checkpoint)", "dsp": "DSP transfer (tools.transfer)", "identity": "identity (input as is)"}
    for sys_ in ("demt", "dsp", "identity"):
        for sn in (True, False):
            r = _get(res["main_summary"], system=sys_, seen=sn)
            if r:
                L.append(f"| {names[sys_]} | {'seen' if sn else 'held-out'} | {r['n']} | {_fmt(r['snr_db'])} | "
                         f"{_fmt(r['rmse_db'])} | {_fmt(r['stoi_pct'])} |")
    L += ["", "By device class:", "", "| system | devices | class | n | SNR (dB) | RMSE (dB) | STOI (%) |",
          "|---|---|---|---|---|---|---|"]
    for r in sorted(res["main_by_type"], key=lambda r: (r["system"], not r["seen"], r["type"])):
        L.append(f"| {r['system']} | {'seen' if r['seen'] else 'held-out'} | {r['type']} | {r['n']} | "
                 f"{_fmt(r['snr_db'])} | {_fmt(r['rmse_db'])} | {_fmt(r['stoi_pct'])} |")
    if res.get("ablation_summary"):
        k = res.get("ablation_step")
        L += ["", "## Ablations", "",
              f"Same model size, data and learning-rate schedule (constant 1.5e-3 after warm-up up to these "
              f"steps), each variant trained from scratch and stopped at step {k}; the full model is the main "
              f"run's checkpoint at the same step (the main run then went on to step "
              f"{res.get('train', {}).get('step', '?')}). A shorter schedule than the main model, for CPU time; "
              "1 test excerpt per device.", "",
              "| variant | step | devices | n | SNR (dB) | RMSE (dB) | STOI (%) | paper SNR (dB) |",
              "|---|---|---|---|---|---|---|---|"]
        paper = {"full": PAPER["snr_db"], "nofilm": PAPER["nofilm_snr_db"], "pool1": PAPER["pool1_snr_db"]}
        label = {"full": "full model (FiLM, full pool)", "nofilm": "no FiLM", "pool1": "embedding pool of 1"}
        tables = {**{int(st): sm for st, sm in (res.get("ablation_earlier") or {}).items()}, k: res["ablation_summary"]}
        for step in sorted(tables):
            for name in ("full", "nofilm", "pool1"):
                for sn in (True, False):
                    r = _get(tables[step], system=name, seen=sn)
                    if r:
                        L.append(f"| {label[name]} | {step} | {'seen' if sn else 'held-out'} | {r['n']} | "
                                 f"{_fmt(r['snr_db'])} | {_fmt(r['rmse_db'])} | {_fmt(r['stoi_pct'])} | "
                                 f"{paper[name] if sn else '–'} |")
    if res.get("fewshot_summary"):
        L += ["", "## Few-shot adaptation of held-out devices", "",
              "Fine-tuning the main checkpoint on one held-out device with 2 % or 5 % of the per-device "
              "training audio (the first 2 % / 5 % of each training track, about 10 s / 25 s of music), "
              "100 steps of batch 8, lr 3e-4; zero-shot is the checkpoint the adaptation started from "
              f"({', '.join(sorted({Path(v).name for v in (res.get('fewshot_init') or {}).values() if v})) or 'the main model'} "
              f"of the main run); scored on {2 * res['per_device']} test excerpts of that device.", "",
              "| device | variant | n | SNR (dB) | RMSE (dB) | STOI (%) |", "|---|---|---|---|---|---|"]
        for r in sorted(res["fewshot_summary"], key=lambda r: (r["device"], r["system"] != "zero-shot", r["system"])):
            L.append(f"| {r['device']} | {r['system']} | {r['n']} | {_fmt(r['snr_db'])} | {_fmt(r['rmse_db'])} | {_fmt(r['stoi_pct'])} |")
    r = res["rtf"]
    L += ["", "## Speed", "", "| audio | CPU threads | wall (s) | speed |", "|---|---|---|---|",
          f"| {r['audio_s']:.0f} s stereo 44.1 kHz | {r['threads']} | {r['wall_s']:.2f} | {r['rtf_x']:.1f}x real time |",
          "", DISCUSSION, "", METHOD, "", RECIPE_TEXT.format(**recipe.to_json()), "", REPRO, "",
          "## Per-device results (DeMT vs DSP, SNR dB / STOI %)", "",
          "| device | class | seen | DeMT SNR | DSP SNR | identity SNR | DeMT STOI | DSP STOI |", "|---|---|---|---|---|---|---|---|"]
    byd = res["main_by_device"]
    for dname in sorted({r["device"] for r in byd}):
        m, d_, i = (_get(byd, system=s, device=dname) for s in ("demt", "dsp", "identity"))
        L.append(f"| {dname} | {m['type']} | {'yes' if m['seen'] else 'no'} | {_fmt(m['snr_db'])} | {_fmt(d_['snr_db'])} | "
                 f"{_fmt(i['snr_db'])} | {_fmt(m['stoi_pct'])} | {_fmt(d_['stoi_pct'])} |")
    L += ["", f"_Generated by `sense demt eval` in {res['eval_seconds'] / 60:.1f} min from `{res['checkpoint']}`._", ""]
    return "\n".join(L)
