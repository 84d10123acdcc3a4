"""Time to accuracy of the CIFAR-10 conv-net recipe: PyTorch CPU eager against chainrule, same data, same epochs.

    python bench/bench_cnn.py --framework torch --epochs 2 --train-size 10000        # a short look
    python bench/bench_cnn.py --framework torch --set '{"batch_size": 512}' --tag bs512
    python bench/bench_cnn.py --compare --epochs 8                                     # both, alternating turns

The recipe (``RECIPE``; airbench93-shaped): a frozen 2x2 patch-whitening conv 3 -> 24 (with a trained bias for the
first ``whiten_bias_epochs``), GELU; three blocks conv3x3 -> maxpool2 -> BatchNorm (no weight, momentum 0.4 in
PyTorch's convention) -> GELU -> conv3x3 -> BatchNorm -> GELU of widths 64/128/128; maxpool 3; linear / 9. Label
smoothing; Nesterov SGD with BatchNorm biases at ``bias_scaler`` times the learning rate, decoupled weight decay,
a linear warm-up then linear decay; Lookahead every 5 steps; alternating flips + ``translate``-px reflect-padded
translations (``chainrule.data.FlipTranslate``); flip + 1-px shift test-time augmentation
(``chainrule.data.predict_tta``). The whitening filters come from ``chainrule.data.patch_whitening_filters`` and
the batches from ``chainrule.data.DataLoader`` for both frameworks, so the two differ only in the engine.

Splits (``ablate_mlp.splits()``, the fixed splits of the MLP study): ``--split val`` trains on ``train`` (40,000)
and scores ``val`` (5,000); ``--split final`` trains on train + val and scores the untouched ``holdout``.
The clock runs while training (whitening, steps, Lookahead) and stops during the per-epoch validation passes; each
run reports the training seconds at which validation first reached 85% and 90%, the final accuracy with and without
TTA, images/s, and peak memory (peak RSS of the run's own process: each framework runs in a fresh subprocess).
One JSON line per run (appended to ``--out``), with the load average and other processes' CPU use.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablate_mlp import ARCHIVE, report, splits  # noqa: E402  (the fixed splits of the lever study)
from best_mlp import LoadSampler  # noqa: E402

# the shared archive beside the checkout (/work/main), or $CIFAR10_ARCHIVE (a worktree elsewhere)
ARCHIVE = Path(os.environ.get("CIFAR10_ARCHIVE", ARCHIVE))

RECIPE = {
    "widths": [64, 128, 128],
    "whiten_kernel": 2,
    "whiten_eps": 5e-4,
    "whiten_images": 5000,
    "whiten_bias_epochs": 3,
    "batch_size": 512,
    "epochs": 8.0,
    "lr": 11.5,                 # per 1024 examples (airbench's units; see _opt_settings)
    "momentum": 0.85,
    "weight_decay": 0.0153,
    "bias_scaler": 64.0,
    "label_smoothing": 0.2,
    "warmup": 0.23,             # fraction of the steps to the peak
    "lr_start": 0.2,            # relative to the peak
    "lr_end": 0.07,
    "lookahead": True,
    "translate": 2,
    "flip": "alternate",
    "tta_shift": 1,
    "bn_momentum": 0.4,         # PyTorch's convention: running = (1 - m) running + m batch
    "scale": 1 / 9,
    "channels_last": True,
    "seed": 0,
}

MEAN = np.array([125.3, 123.0, 113.9], np.float32)  # CIFAR-10's channel means and standard deviations (0..255)
STD = np.array([63.0, 62.1, 66.7], np.float32)


def load(split: str, train_size: int | None) -> tuple[np.ndarray, ...]:
    """Normalised float32 NHWC images and int64 labels of the split: (X_train, y_train, X_test, y_test)."""
    from chainrule.data import load_image_folder

    ds = load_image_folder(str(ARCHIVE))
    idx = splits(ds.y_train)
    if split == "val":
        train, test = idx["train"], idx["val"]
    else:
        train, test = np.sort(np.concatenate([idx["train"], idx["val"]])), idx["holdout"]
    if train_size:
        train = np.sort(np.random.default_rng(0).permutation(train)[:train_size])
    norm = lambda x: (x.astype(np.float32) - MEAN) / STD  # noqa: E731
    return norm(ds.X_train[train]), ds.y_train[train], norm(ds.X_train[test]), ds.y_train[test]


def _opt_settings(cfg: dict) -> tuple[float, float, float]:
    """airbench's units -> (lr, lr of BatchNorm biases, decoupled decay per step) for PyTorch's SGD."""
    kilostep = 1024 * (1 + 1 / (1 - cfg["momentum"]))
    lr = cfg["lr"] / kilostep
    return lr, lr * cfg["bias_scaler"], cfg["weight_decay"] * cfg["batch_size"] / kilostep


def lr_factor(step: int, total: int, cfg: dict) -> float:
    """The schedule, a pure function of the step: linear warm-up from lr_start to 1, then linear decay to lr_end."""
    warm = int(total * cfg["warmup"])
    if step < warm:
        f = step / warm
        return cfg["lr_start"] * (1 - f) + f
    f = (step - warm) / max(1, total - warm)
    return (1 - f) + cfg["lr_end"] * f


def lookahead_decay(step: int, total: int) -> float:
    """airbench's Lookahead schedule (every 5 steps): slow <- decay slow + (1 - decay) fast, fast <- slow."""
    return 0.95 ** 5 * (step / total) ** 3


# ---- PyTorch -------------------------------------------------------------------------------------------------------


def torch_net(cfg: dict, filters: np.ndarray):
    import torch
    from torch import nn

    def bn(c):
        m = nn.BatchNorm2d(c, eps=1e-12, momentum=cfg["bn_momentum"])
        m.weight.requires_grad = False
        return m

    def conv(cin, cout):
        c = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
        nn.init.dirac_(c.weight.data[:cin])
        return c

    layers = [nn.Conv2d(3, filters.shape[0], cfg["whiten_kernel"], bias=True), nn.GELU()]
    cin = filters.shape[0]
    for w in cfg["widths"]:
        layers += [conv(cin, w), nn.MaxPool2d(2), bn(w), nn.GELU(), conv(w, w), bn(w), nn.GELU()]
        cin = w
    layers += [nn.MaxPool2d(3), nn.Flatten(), nn.Linear(cin, 10, bias=False)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(filters))
        net[0].bias.zero_()
    net[0].weight.requires_grad = False
    return net


def torch_fit(cfg: dict, Xtr, ytr, Xte, yte) -> dict:
    import torch
    import torch.nn.functional as F
    from chainrule.data import DataLoader, FlipTranslate, patch_whitening_filters, predict_tta

    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    fmt = torch.channels_last if cfg["channels_last"] else torch.contiguous_format

    def tensor(xb):  # NHWC numpy -> NCHW tensor (a channels_last view, or an NCHW copy)
        t = torch.from_numpy(xb).permute(0, 3, 1, 2)
        return t.contiguous(memory_format=fmt)

    clock = 0.0
    t0 = time.perf_counter()
    filters = patch_whitening_filters(Xtr[:cfg["whiten_images"]], cfg["whiten_kernel"], cfg["whiten_eps"],
                                      data_format="NHWC")
    net = torch_net(cfg, filters).to(memory_format=fmt)
    lr, lr_bias, wd = _opt_settings(cfg)
    norm_biases = [p for n, p in net.named_parameters() if p.requires_grad and p.ndim == 1 and n != "0.bias"]
    others = [p for n, p in net.named_parameters() if p.requires_grad and (p.ndim > 1)]
    whiten_bias = [net[0].bias]
    groups = [dict(params=norm_biases, lr=lr_bias, weight_decay=wd / lr_bias),
              dict(params=others + whiten_bias, lr=lr, weight_decay=wd / lr)]
    opt = torch.optim.SGD(groups, lr=lr, momentum=cfg["momentum"], nesterov=True)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    aug = FlipTranslate(cfg["translate"], cfg["flip"], seed=cfg["seed"])
    loader = DataLoader(Xtr, ytr, cfg["batch_size"], seed=cfg["seed"], augment=aug, drop_last=True)
    total = int(cfg["epochs"] * len(loader))
    slow = {k: v.detach().clone() for k, v in net.state_dict().items()} if cfg["lookahead"] else None
    clock += time.perf_counter() - t0

    def scores(x, batch=1000):
        net.eval()
        with torch.no_grad():
            out = np.concatenate([net(tensor(np.ascontiguousarray(x[i:i + batch]))).float().numpy()
                                  for i in range(0, len(x), batch)])
        net.train()
        return out

    history, step, epoch, done = [], 0, 0, False
    while not done:
        t0 = time.perf_counter()
        whiten_trains = epoch < cfg["whiten_bias_epochs"]
        net[0].bias.requires_grad = whiten_trains
        for xb, yb in loader:
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * lr_factor(step, total, cfg)
            out = net(tensor(xb)) * cfg["scale"]
            loss = F.cross_entropy(out, torch.from_numpy(yb), label_smoothing=cfg["label_smoothing"],
                                   reduction="sum")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if slow is not None and (step % 5 == 0 or step >= total):
                decay = 1.0 if step >= total else lookahead_decay(step, total)
                with torch.no_grad():
                    for k, v in net.state_dict().items():
                        if v.dtype.is_floating_point:
                            slow[k].lerp_(v, 1 - decay)
                            v.copy_(slow[k])
            if step >= total:
                done = True
                break
        clock += time.perf_counter() - t0
        epoch += 1
        acc = float((scores(Xte).argmax(1) == yte).mean())
        history.append({"epoch": epoch, "train_s": round(clock, 2), "val_acc": round(acc, 4)})
        print(json.dumps(history[-1]), file=sys.stderr, flush=True)
    tta = float((predict_tta(scores, Xte, shift=cfg["tta_shift"]).argmax(1) == yte).mean())
    return {"history": history, "acc": history[-1]["val_acc"], "acc_tta": round(tta, 4), "train_s": round(clock, 2),
            "steps": step, "img_per_s": round(step * cfg["batch_size"] / clock, 1)}


# ---- driver --------------------------------------------------------------------------------------------------------


def time_to(history: list[dict], target: float) -> float | None:
    return next((h["train_s"] for h in history if h["val_acc"] >= target), None)


def run_one(framework: str, cfg: dict, split: str, train_size: int | None) -> dict:
    Xtr, ytr, Xte, yte = load(split, train_size)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with LoadSampler(15.0) as load_sampler:
        fit = {"torch": torch_fit}[framework]
        result = fit(cfg, Xtr, ytr, Xte, yte)
    result.update(framework=framework, split=split, train_images=len(Xtr), test_images=len(Xte),
                  to_85_s=time_to(result["history"], 0.85), to_90_s=time_to(result["history"], 0.90),
                  peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  data_rss_mb=round(rss0 / 1024, 1), loadavg=os.getloadavg(), **load_sampler.summary())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--framework", choices=["torch"], default="torch")
    ap.add_argument("--compare", action="store_true", help="run every framework, alternating, each in a subprocess")
    ap.add_argument("--split", choices=["val", "final"], default="val")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--train-size", type=int, default=None, help="a random subset of the training split")
    ap.add_argument("--set", default="{}", help="JSON object of RECIPE overrides")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", default=None, help="append the JSON line to this .jsonl file")
    args = ap.parse_args()
    cfg = dict(RECIPE, **json.loads(args.set))
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    unknown = set(cfg) - set(RECIPE)
    if unknown:
        sys.exit(f"unknown recipe keys {sorted(unknown)}; known: {sorted(RECIPE)}")
    if args.compare:
        for fw in ["torch"]:
            cmd = [sys.executable, __file__, "--framework", fw, "--split", args.split, "--set", json.dumps(cfg),
                   "--tag", args.tag] + (["--train-size", str(args.train_size)] if args.train_size else []) + \
                  (["--out", args.out] if args.out else [])
            subprocess.run(cmd, check=True)
        return
    result = run_one(args.framework, cfg, args.split, args.train_size)
    result.update(tag=args.tag, recipe={k: v for k, v in cfg.items() if RECIPE.get(k) != v}, cpu=os.cpu_count())
    report(result, args.out)


if __name__ == "__main__":
    main()
