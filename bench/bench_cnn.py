"""Time to accuracy of the CIFAR-10 conv-net recipe: PyTorch CPU eager against chainrule, same data, same epochs;
and the measured whole fits of configs/cifar10-cnn.toml.

    python bench/bench_cnn.py --throughput                            # training steps of each, alternating processes
    python bench/bench_cnn.py --compare --epochs 4 --tag cmp          # both frameworks, one after the other
    python bench/bench_cnn.py --compare --epochs 1 --train-size 768 --test-size 300   # a smoke run of both (a minute)
    python bench/bench_cnn.py --framework torch --epochs 2 --train-size 10000 --set '{"batch_size": 512}'
    python bench/bench_cnn.py --config configs/cifar10-cnn.toml --split val --tag cfg_val       # a whole fit
    python bench/bench_cnn.py --config configs/cifar10-cnn.toml --split final --set '{"random_state": 1}'

The recipe is ConvNetClassifier's parameters (``RECIPE``, or the estimator keys of a ``--config`` file, with
``--set`` overrides): airbench93's shape -- a frozen 2x2 patch-whitening conv 3 -> 24 (trained bias), GELU; three
blocks conv3x3 -> maxpool2 -> BatchNorm (weight frozen at 1) -> GELU -> conv3x3 -> BatchNorm -> GELU of widths
64/128/128; global max; linear; scores / 9 -- trained with label smoothing, Nesterov SGD with the norms' shifts at
``norm_lr_scale`` times the learning rate, a linear warm-up then linear decay, Lookahead (every 5 steps, cubic
schedule), alternating flips + 2-px reflect-padded translations, and predicted with flip + 1-px shift TTA.
``--framework torch`` writes that fit out step for step in PyTorch eager (float32, channels_last, the same
chainrule DataLoader / FlipTranslate / Standardize / whitening filters, so the two differ only in the engine and in
the loader's seed); ``--framework chainrule`` is ``ConvNetClassifier(**recipe).fit``. Convolutions run on oneDNN
(``CHAINRULE_CONV=auto``, set here unless given) where it loads.

Fixed epochs (no ``time_budget``): validation accuracy after every epoch, and the training seconds (steps only;
the clock stops during validation) at which it first reached 85% and 90%; then the final accuracy with and without
TTA, images/s, peak RSS of the run's own process (each framework runs in a fresh subprocess under ``--compare``).
With a ``time_budget`` (the config): the whole ``fit`` (standardisation, whitening, training) is timed with no
per-epoch validation, then scored; ``fit_s`` is the figure the 600-s goal is about.

Splits (``ablate_mlp.splits()``, the fixed splits of the MLP study): ``--split val`` trains on ``train`` (40,000)
and scores ``val`` (5,000); ``--split final`` trains on train + val (45,000) and scores the untouched ``holdout``
(5,000): only for the final figure. One JSON line per run (appended to ``--out``), with the load average and the
CPU other processes used (``best_mlp.LoadSampler``).
"""
from __future__ import annotations

import os

os.environ.setdefault("CHAINRULE_CONV", "auto")  # oneDNN's convolutions where they load (before chainrule loads)

import argparse
import json
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

RECIPE = {  # ConvNetClassifier's parameters (the estimator's defaults, where they are the recipe's)
    "channels": [64, 128, 128],
    "whiten_kernel": 2,
    "whiten_eps": 5e-4,
    "whiten_images": 5000,
    "batch_size": 256,
    "epochs": 4,
    "lr": 0.4,                  # mean loss over the batch; airbench's 11.5 per 1024 summed examples ~ 1.5 at 1024
    "momentum": 0.85,
    "weight_decay": 1.3e-3,     # L2 added to the gradient of the conv and linear weights
    "norm_lr_scale": 64.0,
    "norm_weight_decay": 0.0,
    "label_smoothing": 0.2,
    "warmup_epochs": 1.0,       # linear warm-up from 0, then linear decay to 0
    "lookahead": True,
    "translate": 2,
    "alternate_flips": True,
    "test_time_shift": 1,
    "random_state": 0,
}


def load(split: str, train_size: int | None, test_size: int | None = None) -> tuple[np.ndarray, ...]:
    """uint8 NHWC images and int64 labels of the split: (X_train, y_train, X_test, y_test)."""
    from chainrule.data import load_image_folder

    ds = load_image_folder(str(ARCHIVE))
    idx = splits(ds.y_train)
    if split == "val":
        train, test = idx["train"], idx["val"]
    else:
        train, test = np.sort(np.concatenate([idx["train"], idx["val"]])), idx["holdout"]
    if train_size:
        train = np.sort(np.random.default_rng(0).permutation(train)[:train_size])
    if test_size:
        test = np.sort(np.random.default_rng(1).permutation(test)[:test_size])
    return ds.X_train[train], ds.y_train[train], ds.X_train[test], ds.y_train[test]


# ---- PyTorch: the estimator's recipe, written out ------------------------------------------------------------------


def torch_net(cfg: dict, filters: np.ndarray):
    """nn.ConvNet's layers in PyTorch (BatchNorm weight frozen at 1, eps 1e-12, momentum 0.4; dirac-initialised
    convs; global max; linear without bias; scores / 9)."""
    import torch
    from torch import nn

    def bn(c):
        m = nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)
        m.weight.requires_grad = False
        return m

    def conv(cin, cout):
        c = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
        nn.init.dirac_(c.weight.data[:min(cin, cout)])
        return c

    layers = [nn.Conv2d(3, filters.shape[0], cfg["whiten_kernel"], bias=True), nn.GELU()]
    cin = filters.shape[0]
    for w in cfg["channels"]:
        layers += [conv(cin, w), nn.MaxPool2d(2), bn(w), nn.GELU(), conv(w, w), bn(w), nn.GELU()]
        cin = w
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(cin, 10, bias=False)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(filters))
        net[0].bias.zero_()
    net[0].weight.requires_grad = False
    return net


def precision(cfg: dict) -> str:
    """The recipe's ``matmul_precision`` as ConvNetClassifier resolves it here: "bf16" or "float32"."""
    from chainrule.classifiers import ConvNetClassifier
    from chainrule.classifiers._network_params import matmul_precision

    return matmul_precision(ConvNetClassifier(matmul_precision=cfg.get("matmul_precision", "auto")))


def torch_autocast(prec: str):
    """PyTorch's counterpart of chainrule's precision ``prec``: bfloat16 autocast (its convolutions and products in
    bf16, PyTorch's own choice of which ops stay float32) for "bf16", else a no-op."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16")


def torch_fit(cfg: dict, Xtr, ytr, Xte, yte) -> dict:
    """ConvNetClassifier's fit, step for step in PyTorch eager (channels_last; float32, or bfloat16 autocast where
    chainrule runs bf16 products), the same batches."""
    import torch
    import torch.nn.functional as F
    from chainrule.data import DataLoader, FlipTranslate, Standardize, patch_whitening_filters, predict_tta

    torch.manual_seed(cfg["random_state"])
    prec = precision(cfg)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    fmt = torch.channels_last

    t0 = time.perf_counter()
    prep = Standardize().fit(Xtr.reshape(len(Xtr), -1))
    shape = Xtr.shape[1:]

    def nhwc(x):
        return prep.transform(x.reshape(len(x), -1)).reshape(len(x), *shape)

    n_w = cfg["whiten_images"]
    filters = patch_whitening_filters(nhwc(Xtr[::max(1, len(Xtr) // n_w)][:n_w]), cfg["whiten_kernel"],
                                      cfg["whiten_eps"], data_format="NHWC")
    net = torch_net(cfg, filters).to(memory_format=fmt)
    lr = cfg["lr"]
    norms = [p for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()
             if p.requires_grad]
    biases = [net[0].bias]
    weights = [p for p in net.parameters() if p.requires_grad and p.ndim > 1]
    opt = torch.optim.SGD([dict(params=weights, weight_decay=cfg["weight_decay"]),
                           dict(params=biases, weight_decay=0.0),
                           dict(params=norms, lr=lr * cfg["norm_lr_scale"], weight_decay=cfg["norm_weight_decay"])],
                          lr=lr, momentum=cfg["momentum"], nesterov=True)
    base = [g["lr"] for g in opt.param_groups]
    aug = FlipTranslate(cfg["translate"], "alternate" if cfg["alternate_flips"] else "random",
                        seed=cfg["random_state"])
    loader = DataLoader(Xtr, ytr, cfg["batch_size"], seed=cfg["random_state"], augment=aug, transform=nhwc)
    total = cfg["epochs"] * len(loader)
    warm = int(round(cfg["warmup_epochs"] * len(loader)))
    slow = {k: v.detach().clone() for k, v in net.state_dict().items() if v.dtype.is_floating_point} \
        if cfg["lookahead"] else None
    setup = time.perf_counter() - t0

    def tensor(xb):  # NHWC numpy -> an NCHW tensor with channels_last strides (no copy)
        return torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)).permute(0, 3, 1, 2)

    def scores(x, batch=500):
        net.eval()
        with torch.no_grad():
            with torch_autocast(prec):
                out = np.concatenate([(net(tensor(x[i:i + batch])) / 9).float().numpy()
                                      for i in range(0, len(x), batch)])
        net.train()
        return out

    Xte_n = nhwc(Xte)
    history, step, clock = [], 0, 0.0
    for epoch in range(cfg["epochs"]):
        t0 = time.perf_counter()
        for xb, yb in loader:
            f = step / warm if step < warm else max(0.0, (total - step) / (total - warm))
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * f
            with torch_autocast(prec):
                loss = F.cross_entropy(net(tensor(xb)) / 9, torch.from_numpy(yb),
                                       label_smoothing=cfg["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if slow is not None and step % 5 == 0:
                alpha = 1.0 - 0.95 ** 5 * (step / total) ** 3
                with torch.no_grad():
                    for k, v in net.state_dict().items():
                        if k in slow:
                            slow[k].lerp_(v, alpha)
                            v.copy_(slow[k])
        clock += time.perf_counter() - t0
        acc = float((scores(Xte_n).argmax(1) == yte).mean())
        history.append({"epoch": epoch + 1, "train_s": round(clock, 2), "val_acc": round(acc, 4)})
        print(json.dumps(history[-1]), file=sys.stderr, flush=True)
    if slow is not None:
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if k in slow:
                    v.copy_(slow[k])
    acc = float((scores(Xte_n).argmax(1) == yte).mean())
    tta = float((predict_tta(scores, Xte_n, shift=cfg["test_time_shift"]).argmax(1) == yte).mean())
    return {"history": history, "acc": round(acc, 4), "acc_tta": round(tta, 4), "train_s": round(clock, 2),
            "precision": prec, "setup_s": round(setup, 2), "steps": step,
            "img_per_s": round(step * cfg["batch_size"] / clock, 1)}


# ---- chainrule: the estimator itself -------------------------------------------------------------------------------


class _EpochClock:
    """Trainer callback: (epoch, training seconds, validation accuracy) after every epoch."""

    def __init__(self):
        self.history = []

    def on_epoch_end(self, trainer) -> None:
        e = trainer.history.epochs[-1]
        self.history.append({"epoch": int(e["epoch"]), "train_s": round(float(e["time_s"]), 2),
                             "val_acc": round(float(e["val_acc"]), 4)})
        print(json.dumps(self.history[-1]), file=sys.stderr, flush=True)


def chainrule_fit(cfg: dict, Xtr, ytr, Xte, yte) -> dict:
    from chainrule.backend import conv
    from chainrule.classifiers import ConvNetClassifier

    est = ConvNetClassifier(**cfg)
    if cfg.get("time_budget") is not None:  # the whole fit, timed as a user runs it: no per-epoch validation
        est.fit(Xtr, ytr)
        t0 = time.perf_counter()
        tta = est.score(Xte, yte)
        score_s = time.perf_counter() - t0
        est.set_params(test_time_flip=False, test_time_shift=0)
        return {"history": [], "acc": round(est.score(Xte, yte), 4), "acc_tta": round(tta, 4),
                "fit_s": round(est.fit_time_, 2), "train_s": round(est.train_time_, 2), "score_s": round(score_s, 2),
                "steps": int(est.n_steps_), "epochs": round(est.n_steps_ * est.batch_size / len(Xtr), 2),
                "img_per_s": round(est.n_steps_ * est.batch_size / est.train_time_, 1),
                "stop_reason": est.stop_reason_, "conv": conv.info()["conv"], "precision": precision(cfg)}
    clock = _EpochClock()
    est.fit(Xtr, ytr, validation_data=(Xte, yte), callbacks=[clock])
    tta = est.score(Xte, yte)
    est.set_params(test_time_flip=False, test_time_shift=0)
    acc = est.score(Xte, yte)
    train_s = clock.history[-1]["train_s"]
    return {"history": clock.history, "acc": round(acc, 4), "acc_tta": round(tta, 4), "train_s": train_s,
            "fit_s": round(est.fit_time_, 2), "steps": int(est.n_steps_), "conv": conv.info()["conv"],
            "precision": precision(cfg),
            "img_per_s": round(est.n_steps_ * cfg["batch_size"] / train_s, 1)}


# ---- throughput: one training step of each, alternating turns, each framework in its own process -----------------


def step_times(framework: str, cfg: dict, steps: int) -> list[float]:
    """Seconds of each of ``steps`` training steps (forward, loss, backward, SGD) of the recipe's net at its batch
    size in this process: chainrule (nn.ConvNet, param groups) or PyTorch (channels_last), at the recipe's precision
    (``precision``: float32, or bf16 products in chainrule and bfloat16 autocast in PyTorch)."""
    prec = precision(cfg)
    b = cfg["batch_size"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, b)
    if framework == "chainrule":
        from chainrule import backend, nn, optim
        from chainrule.classifiers._network_params import MATMUL_PRECISIONS
        from chainrule.nn import functional as F

        net = nn.ConvNet(3, 10, cfg["channels"], seed=0)
        opt = optim.SGD(optim.param_groups(net), lr=0.01, momentum=0.85, nesterov=True)

        def step():
            with backend.float32_matmul_precision(MATMUL_PRECISIONS[prec]):
                loss = F.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
    else:
        import torch

        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
        tnet = torch_net(cfg, np.zeros((24, 3, 2, 2), np.float32)).to(memory_format=torch.channels_last)
        topt = torch.optim.SGD([p for p in tnet.parameters() if p.requires_grad], lr=0.01, momentum=0.85,
                               nesterov=True)
        tx, ty = torch.from_numpy(x).contiguous(memory_format=torch.channels_last), torch.from_numpy(y)

        def step():
            with torch_autocast(prec):
                loss = torch.nn.functional.cross_entropy(tnet(tx) / 9, ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def throughput(cfg: dict, rounds: int = 3, steps: int = 8, warmup: int = 3) -> dict:
    """img/s of one training step of chainrule and of PyTorch: ``rounds`` alternating turns, each framework in a
    fresh subprocess running ``warmup`` + ``steps`` steps; the median over the timed steps. (Alternated in one
    process, chainrule's steps took up to 3x their time alone; the cause is not pinned down, both share one
    libgomp.)"""
    from chainrule.backend import conv

    times: dict[str, list[float]] = {"chainrule": [], "torch": []}
    for _ in range(rounds):
        for name in times:
            out = subprocess.run([sys.executable, __file__, "--step-times", name, "--set", json.dumps(cfg),
                                  "--epochs", str(warmup + steps)], check=True, capture_output=True, text=True)
            times[name] += json.loads(out.stdout.strip().splitlines()[-1])[warmup:]
    med = {k: float(np.median(v)) for k, v in times.items()}
    b = cfg["batch_size"]
    return {"mode": "throughput", "batch_size": b, "chainrule_img_per_s": round(b / med["chainrule"], 1),
            "torch_img_per_s": round(b / med["torch"], 1), "time_ratio_chainrule_over_torch":
            round(med["chainrule"] / med["torch"], 3), "conv": conv.info()["conv"], "precision": precision(cfg),
            "channels": list(cfg["channels"]), "step_times_s": {k: [round(t, 3) for t in v] for k, v in times.items()}}


# ---- driver --------------------------------------------------------------------------------------------------------


def config_params(path: str) -> dict:
    """The ConvNetClassifier parameters of a ``chainrule train --config`` file (its run settings dropped)."""
    import inspect

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from chainrule.classifiers import ConvNetClassifier

    table = tomllib.loads(Path(path).read_text())
    names = set(inspect.signature(ConvNetClassifier).parameters)
    return {k: v for k, v in table.items() if k in names}


def time_to(history: list[dict], target: float) -> float | None:
    return next((h["train_s"] for h in history if h["val_acc"] >= target), None)


def run_one(framework: str, cfg: dict, split: str, train_size: int | None, test_size: int | None) -> dict:
    Xtr, ytr, Xte, yte = load(split, train_size, test_size)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with LoadSampler(15.0) as load_sampler:
        fit = {"torch": torch_fit, "chainrule": chainrule_fit}[framework]
        result = fit(cfg, Xtr, ytr, Xte, yte)
    result.update(framework=framework, split=split, train_images=len(Xtr), test_images=len(Xte),
                  to_85_s=time_to(result["history"], 0.85), to_90_s=time_to(result["history"], 0.90),
                  peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  data_rss_mb=round(rss0 / 1024, 1), loadavg=os.getloadavg(), **load_sampler.summary())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--framework", choices=["torch", "chainrule"], default="chainrule")
    ap.add_argument("--compare", action="store_true", help="run every framework, alternating, each in a subprocess")
    ap.add_argument("--throughput", action="store_true", help="time one training step of each, alternating turns")
    ap.add_argument("--step-times", choices=["torch", "chainrule"], default=None,
                    help="(used by --throughput) print the seconds of --epochs training steps of one framework")
    ap.add_argument("--split", choices=["val", "final"], default="val")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--train-size", type=int, default=None, help="a random subset of the training split")
    ap.add_argument("--test-size", type=int, default=None, help="a random subset of the scored split (smoke runs)")
    ap.add_argument("--config", default=None, help="a chainrule train --config file: its estimator keys replace RECIPE")
    ap.add_argument("--set", default="{}", help="JSON object of recipe overrides")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", default=None, help="append the JSON line to this .jsonl file")
    args = ap.parse_args()
    cfg = config_params(args.config) if args.config else dict(RECIPE)
    cfg.update(json.loads(args.set))
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    import inspect

    from chainrule.classifiers import ConvNetClassifier

    unknown = set(cfg) - set(inspect.signature(ConvNetClassifier).parameters)
    if unknown:
        sys.exit(f"unknown recipe keys {sorted(unknown)}: not ConvNetClassifier parameters")
    if args.framework == "torch" and not args.compare:
        cfg = {**{k: v for k, v in RECIPE.items() if k not in cfg}, **cfg}  # the torch side reads these keys
    if args.step_times:
        print(json.dumps(step_times(args.step_times, cfg, args.epochs or 11)))
        return
    if args.throughput:
        with LoadSampler(10.0) as load_sampler:
            result = throughput(cfg)
        result.update(tag=args.tag, loadavg=os.getloadavg(), cpu=os.cpu_count(), date=time.strftime("%Y-%m-%d %H:%M"),
                      **load_sampler.summary())
        report(result, args.out)
        return
    if args.compare:
        for fw in ["torch", "chainrule"]:
            cmd = [sys.executable, __file__, "--framework", fw, "--split", args.split, "--set", json.dumps(cfg),
                   "--tag", args.tag] + (["--train-size", str(args.train_size)] if args.train_size else []) + \
                  (["--test-size", str(args.test_size)] if args.test_size else []) + \
                  (["--out", args.out] if args.out else [])
            subprocess.run(cmd, check=True)
        return
    result = run_one(args.framework, cfg, args.split, args.train_size, args.test_size)
    result.update(tag=args.tag, config=args.config, recipe={k: v for k, v in cfg.items() if RECIPE.get(k) != v},
                  cpu=os.cpu_count(), date=time.strftime("%Y-%m-%d %H:%M"))
    report(result, args.out)


if __name__ == "__main__":
    main()
