"""Training loop for DeMT: on-the-fly simulated data, negative-SNR loss, checkpoints and resume.

One step: a batch of mono excerpts of seen devices (:class:`demt.data.Simulator`), one embedding
per example drawn from its device's embedding pool (arXiv 2511.17136: "one embedding per step
from the pool"), loss = mean over examples of -SNR(target, output) in dB (scale-balanced, and the
metric we report). AdamW, linear warm-up, constant rate, cosine decay over the last 30 % of
``steps`` (so an ablation stopped early at step k saw the same schedule as the main run up to k).
Writes ``<out>/log.csv`` (step, loss, train SNR, val SNR, lr, seconds) and ``<out>/last.pt``
every ``ckpt_every`` steps (and ``step<k>.pt`` at each ``keep_steps``).
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from demt.data import Recipe, Simulator
from demt.devices import Device, embedding_pool, get_encoder, load_devices, split_devices
from demt.infer import CheckpointMissingError
from demt.model import DemtConfig, DemtModel


@dataclass
class TrainConfig:
    """Training run settings (saved as train.json)."""

    steps: int = 6000
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 100
    seed: int = 0
    full_pool: bool = True
    log_every: int = 25
    val_every: int = 250
    ckpt_every: int = 250
    keep_steps: list[int] = field(default_factory=list)
    max_steps: int | None = None  # stop early (ablations) with the schedule of `steps`
    threads: int = 1
    devices: list[str] | None = None  # train only on these (few-shot); default: all seen devices
    audio_fraction: float = 1.0  # keep this fraction of each training track (few-shot budget)
    val_examples: int = 16


def neg_snr_loss(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -10 log10(sum ref^2 / sum (est - ref)^2), dB. Shapes (B, L)."""
    num = ref.pow(2).sum(-1) + 1e-9
    den = (est - ref).pow(2).sum(-1) + 1e-9
    return -(10 * torch.log10(num / den)).mean()


def lr_at(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    decay_start = int(0.7 * tc.steps)
    if step < decay_start:
        return tc.lr
    p = (step - decay_start) / max(1, tc.steps - decay_start)
    return tc.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def save_checkpoint(path: Path, model: DemtModel, opt, step: int, tc: TrainConfig, recipe: Recipe, rng_state=None):
    tmp = Path(path).with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "config": model.cfg.to_json(), "opt": opt.state_dict() if opt else None,
                "step": step, "train": asdict(tc), "recipe": recipe.to_json(), "rng": rng_state}, tmp)
    tmp.replace(path)


def load_model_state(path: Path) -> tuple[DemtModel, dict]:
    """(model, raw checkpoint dict) from a training checkpoint (.pt).

    Raises: demt.infer.CheckpointMissingError when there is no such file.
    """
    if not Path(path).is_file():
        raise CheckpointMissingError(f"no training checkpoint {path}")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = DemtModel(DemtConfig(**ck["config"]))
    model.load_state_dict(ck["model"])
    return model, ck


def train(out: Path, tc: TrainConfig, cfg: DemtConfig | None = None, recipe: Recipe | None = None,
          resume: bool = False, init_from: Path | None = None, progress: bool = True,
          devices: list[Device] | None = None) -> dict:
    """Train (or resume) a DeMT model in ``out``; returns a summary dict.

    Args:
        out: run folder (created).
        tc: run settings. cfg: model config (ignored on resume/init_from: taken from the checkpoint).
        recipe: simulation recipe (default :class:`Recipe`).
        resume: continue from ``out/last.pt`` (model, optimiser, step).
        init_from: start from these weights (few-shot adaptation) with a fresh optimiser.
        devices: all devices (default :func:`load_devices`); training uses the seen split, or
            ``tc.devices`` when given.
    """
    from tqdm import tqdm

    torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = recipe or Recipe()
    devices = devices if devices is not None else load_devices()
    seen, _held = split_devices(devices, tc.seed)
    if tc.devices:
        names = set(tc.devices)
        train_devs = [d for d in devices if d.name in names]
        if len(train_devs) != len(names):
            raise ValueError(f"unknown devices: {sorted(names - {d.name for d in train_devs})}")
    else:
        train_devs = seen
    start = 0
    if resume and (out / "last.pt").is_file():
        model, ck = load_model_state(out / "last.pt")
        start = ck["step"]
    elif init_from is not None:
        model, _ = load_model_state(Path(init_from))
    else:
        model = DemtModel(cfg or DemtConfig())
    encoder = get_encoder(model.cfg.embedder)
    pools = {d.name: torch.from_numpy(embedding_pool(d, tc.seed, full=tc.full_pool, encoder=encoder))
             for d in train_devs}
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=1e-4)
    if resume and start:
        opt.load_state_dict(ck["opt"])
    (out / "train.json").write_text(json.dumps({"train": asdict(tc), "config": model.cfg.to_json(),
                                                "recipe": recipe.to_json(), "init_from": str(init_from) if init_from else None,
                                                "resumed_at": start, "train_devices": [d.name for d in train_devs]},
                                               indent=1))
    sim = Simulator(train_devs, "train", recipe, tc.seed, tc.audio_fraction)
    val_sim = Simulator(train_devs, "val", recipe, tc.seed)
    seconds = model.cfg.segment_seconds
    vx, vy, vd = val_sim.batch(0, tc.val_examples, seconds)
    vx, vy = torch.from_numpy(vx), torch.from_numpy(vy)
    vemb = torch.stack([pools[d.name][0] for d in vd])
    gen = torch.Generator().manual_seed(tc.seed + 1)
    log_path = out / "log.csv"
    new_log = not (resume and log_path.is_file())
    logf = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(logf)
    if new_log:
        writer.writerow(["step", "loss", "train_snr_db", "val_snr_db", "lr", "seconds"])
    stop = min(tc.steps, tc.max_steps or tc.steps)
    t0 = time.time()
    losses: list[float] = []
    val_snr = float("nan")
    bar = tqdm(range(start, stop), initial=start, total=stop, disable=not progress, desc="demt train", mininterval=5)
    for step in bar:
        model.train()
        x, y, devs = sim.batch(step, tc.batch, seconds)
        emb = torch.stack([pools[d.name][int(torch.randint(len(pools[d.name]), (1,), generator=gen))] for d in devs])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc)
        est = model(torch.from_numpy(x), emb)
        loss = neg_snr_loss(est, torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(loss.item())
        done = step + 1
        if done % tc.val_every == 0 or done == stop:
            model.eval()
            with torch.no_grad():
                val_snr = -float(neg_snr_loss(model(vx, vemb), vy))
        if done % tc.log_every == 0 or done == stop:
            writer.writerow([done, f"{np.mean(losses):.4f}", f"{-np.mean(losses):.3f}", f"{val_snr:.3f}",
                             f"{lr_at(step, tc):.2e}", f"{time.time() - t0:.1f}"])
            logf.flush()
            bar.set_postfix(snr=f"{-np.mean(losses):.2f}dB", val=f"{val_snr:.2f}dB")
            losses = []
        if done % tc.ckpt_every == 0 or done == stop:
            save_checkpoint(out / "last.pt", model, opt, done, tc, recipe)
        if done in tc.keep_steps:
            save_checkpoint(out / f"step{done}.pt", model, None, done, tc, recipe)
    logf.close()
    return {"steps": stop, "val_snr_db": val_snr, "seconds": time.time() - t0, "out": str(out)}
