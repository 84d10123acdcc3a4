"""search(): grid / random / halving on tiny data, divergence and failures, run folders, resume, load_best."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import tune_toys
from chainrule.tune import (Budget, Diverged, DivergenceCallback, NoSuccessfulTrialError, SearchFolder,
                            SearchFolderError, SpaceError, cross_validate, halving_plan, load_best, loguniform,
                            search)
from chainrule.tune.store import SearchFolderWarning
from tune_toys import Failing, KillsItsWorker, ToyKNN, ToySoftmax, blobs

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def data(tune_data):
    return tune_data


def _summary(result):
    return [(t.trial, t.rung, t.budget, t.params, t.status, t.score, t.scores) for t in result.trials]


# ---- strategies -------------------------------------------------------------------------------------------------


def test_grid_search_with_cv_matches_cross_validate_per_value(data):
    X, y = data
    result = search(ToyKNN, {"k": [1, 3, 5, 9]}, X, y, strategy="grid", validation=5, seed=0, n_jobs=1)
    assert [t.params for t in result.trials] == [{"k": 1}, {"k": 3}, {"k": 5}, {"k": 9}]
    for t in result.trials:
        cv = cross_validate(ToyKNN(k=t.params["k"]), X, y, k=5, seed=0, n_jobs=1)
        np.testing.assert_allclose(t.scores, cv.scores)
        assert t.score == pytest.approx(cv.mean) and t.std == pytest.approx(cv.std) and t.status == "ok"
    best = max(result.trials, key=lambda t: (t.score, -t.std, -t.trial))
    assert result.best is best and result.best_params == best.params and result.best_score == best.score
    table = result.table()
    assert table.splitlines()[0].split() == ["rank", "trial", "k", "val", "score", "±", "std", "fit", "s"]
    assert "4 trials: 4 ok, 0 diverged, 0 failed" in table


def test_random_search_is_reproducible_and_parallel_equals_serial(data):
    X, y = data
    space = {"lr": loguniform(1e-3, 1.0), "reg": [1e-4, 1e-2]}
    a = search(ToySoftmax, space, X, y, strategy="random", n_trials=6, seed=5, n_jobs=1, fixed={"epochs": 10})
    b = search(ToySoftmax, space, X, y, strategy="random", n_trials=6, seed=5, n_jobs=2, fixed={"epochs": 10})
    c = search(ToySoftmax, space, X, y, strategy="random", n_trials=6, seed=6, n_jobs=1, fixed={"epochs": 10})
    assert len(a.trials) == 6 and all(1e-3 <= t.params["lr"] < 1.0 for t in a.trials)
    assert _summary(a) == _summary(b)
    assert [t.params for t in a.trials] != [t.params for t in c.trials]
    assert a.best_fit_params == {"epochs": 10, **a.best_params}


def test_halving_gives_the_best_candidates_more_budget(data):
    X, y = data
    result = search(ToySoftmax, {"lr": loguniform(1e-3, 1.0)}, X, y, strategy="halving", n_trials=9,
                    budget=("epochs", 1, 9), eta=3, validation=3, seed=0, n_jobs=1)
    assert halving_plan(9, Budget("epochs", 1, 9), 3) == [(9, 1), (3, 3), (1, 9)]
    rungs = [[t for t in result.trials if t.rung == r] for r in range(3)]
    assert [len(r) for r in rungs] == [9, 3, 1] and [r[0].budget for r in rungs] == [1, 3, 9]
    for lower, upper in zip(rungs, rungs[1:]):
        ranked = sorted(lower, key=lambda t: (-t.score, t.std, t.trial))
        assert sorted(t.trial for t in upper) == sorted(t.trial for t in ranked[:len(upper)])
    assert result.best.rung == 2 and result.best_fit_params == {"lr": result.best.params["lr"], "epochs": 9}
    # the same candidates at the top budget score as a plain evaluation with epochs=9 does
    cv = cross_validate(ToySoftmax(lr=result.best.params["lr"], epochs=9), X, y, k=3, seed=0, n_jobs=1)
    assert result.best.score == pytest.approx(cv.mean)
    table = result.table().splitlines()
    assert len(table) == 2 + 9 + 1 and table[2].split()[2] == "9"  # one row per candidate, the best first


def test_halving_on_the_number_of_training_samples(data):
    X, y = data
    result = search(ToyKNN, {"k": [1, 3, 5, 7]}, X, y, strategy="halving", budget=("n_samples", 12, 48), eta=2,
                    seed=0, n_jobs=1, validation="holdout", val_size=12)
    assert [t.budget for t in result.trials] == [12] * 4 + [24] * 2 + [48]
    assert "n_samples" not in result.best_fit_params


def test_bad_search_arguments_are_clear_errors(data):
    X, y = data
    with pytest.raises(SpaceError, match=r"unknown hyperparameter 'lrate' \(did you mean 'lr'\?\) for ToySoftmax; "
                                         r"valid names: epochs, lr, random_state, reg"):
        search(ToySoftmax, {"lrate": [0.1]}, X, y)
    with pytest.raises(SpaceError, match="unknown hyperparameter 'bogus'"):
        search(ToySoftmax, {"lr": [0.1]}, X, y, fixed={"bogus": 1})
    with pytest.raises(SpaceError, match="the search space is empty"):
        search(ToySoftmax, {}, X, y)
    with pytest.raises(ValueError, match="n_trials is for the random and halving"):
        search(ToySoftmax, {"lr": [0.1]}, X, y, strategy="grid", n_trials=3)
    with pytest.raises(ValueError, match="strategy='halving' needs budget"):
        search(ToySoftmax, {"lr": [0.1]}, X, y, strategy="halving")
    with pytest.raises(ValueError, match="budget is only used by strategy='halving'"):
        search(ToySoftmax, {"lr": [0.1]}, X, y, strategy="random", budget=("epochs", 1, 3))
    with pytest.raises(SpaceError, match="the halving budget 'epochs' is set by the search"):
        search(ToySoftmax, {"epochs": [1, 2]}, X, y, strategy="halving", budget=("epochs", 1, 3))
    with pytest.raises(ValueError, match="strategy must be one of grid, random, halving"):
        search(ToySoftmax, {"lr": [0.1]}, X, y, strategy="bayes")
    with pytest.raises(ValueError, match="k=30 stratified folds"):
        search(ToySoftmax, {"lr": [0.1]}, X, y, validation=30)


# ---- divergence and failures ------------------------------------------------------------------------------------

PROGRESS: list[int] = []


class Exploding(tune_toys._Params):
    """Multiplies its 'loss' by ``growth`` each of ``epochs`` epochs: overflows float64 after ~31 epochs at 1e10."""

    _names = ("growth", "epochs")

    def __init__(self, growth=1e10, epochs=1000):
        self.growth, self.epochs = growth, epochs

    def fit(self, X, y):
        loss = np.float64(1.0)
        self.loss_history_ = []
        for epoch in range(self.epochs):
            loss = loss * self.growth if self.growth > 1 else loss
            self.loss_history_.append(float(loss))
            PROGRESS.append(epoch)
        self.y0_ = y[0]
        return self

    def predict(self, X):
        return np.full(len(X), self.y0_)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the trap_fp=False run
def test_divergence_is_recorded_never_wins_and_is_stopped_early(data):
    X, y = data
    PROGRESS.clear()
    result = search(Exploding, {"growth": [1e10, 1.0]}, X, y, strategy="grid", n_jobs=1)
    diverged, ok = result.trials
    assert diverged.status == "diverged" and diverged.score is None
    assert "overflow" in diverged.message
    assert PROGRESS.count(999) == 1  # only the healthy trial ran all its epochs ...
    assert len(PROGRESS) < 1000 + 40  # ... the exploding one stopped at the overflow, around epoch 31
    assert ok.status == "ok" and result.best is ok
    assert "2 trials: 1 ok, 1 diverged, 0 failed" in result.table()
    # without the floating-point traps the recorded loss history still marks it diverged (after the fact)
    late = search(Exploding, {"growth": [1e10]}, X, y, strategy="grid", n_jobs=1, trap_fp=False)
    assert late.trials[0].status == "diverged" and "became inf" in late.trials[0].message


def test_exploding_loss_and_nonfinite_errors_are_divergence(data):
    X, y = data
    result = search(ToySoftmax, {"lr": [1e5, 0.1]}, X, y, strategy="grid", n_jobs=1, fixed={"epochs": 20})
    assert [t.status for t in result.trials] == ["diverged", "ok"]
    assert "more than 10x its first value" in result.trials[0].message or "overflow" in result.trials[0].message

    class Raises(tune_toys._Params):
        _names = ("x",)

        def __init__(self, x=0):
            self.x = x

        def fit(self, X, y):
            raise FloatingPointError("loss is nan at step 7 (parameter W)")

    trial = search(Raises, {"x": [0]}, X, y, n_jobs=1).trials[0]
    assert trial.status == "diverged" and "step 7" in trial.message


def test_halving_never_promotes_diverged_trials(data):
    X, y = data
    result = search(ToySoftmax, {"lr": [1e5, 1e4, 1e3, 3e2, 0.1]}, X, y, strategy="halving",
                    budget=("epochs", 3, 6), eta=2, n_jobs=1)
    assert [t.status for t in result.trials if t.rung == 0] == ["diverged"] * 4 + ["ok"]
    # the plan keeps 2 of 5, but only one candidate is healthy: it alone goes on
    assert [(t.rung, t.params["lr"]) for t in result.trials if t.rung == 1] == [(1, 0.1)]
    assert result.best.params == {"lr": 0.1} and result.best.budget == 6


def test_divergence_callback_stops_a_trainer_at_the_bad_step():
    class FakeTrainer:
        def __init__(self):
            self.history = type("H", (), {"steps": {"loss": []}})()

    cb, trainer = DivergenceCallback(explode_factor=3.0), FakeTrainer()
    for loss in (2.3, 2.0, 5.0):
        trainer.history.steps["loss"].append(loss)
        cb.on_step_end(trainer)
    trainer.history.steps["loss"].append(7.5)
    with pytest.raises(Diverged, match=r"exploded to 7.5 at step 3, more than 3x its first value 2.3"):
        cb.on_step_end(trainer)
    trainer.history.steps["loss"].append(float("nan"))
    with pytest.raises(Diverged, match="loss became nan at step 4"):
        DivergenceCallback().on_step_end(trainer)


def test_failed_trials_are_recorded_and_all_failed_has_no_best(data):
    X, y = data
    result = search(Failing, {"when": ["fit", "never"]}, X, y, n_jobs=1)
    failed, ok = result.trials
    assert failed.status == "failed" and failed.message == "RuntimeError: broken on purpose"
    assert ok.status == "ok" and result.best is ok
    bad = search(Failing, {"when": ["fit"]}, X, y, n_jobs=1)
    with pytest.raises(NoSuccessfulTrialError, match=r"no trial finished ok \(1 failed\).*broken on purpose"):
        bad.best


# ---- run folders, resume, load_best -----------------------------------------------------------------------------

SPACE = {"lr": loguniform(1e-2, 1.0), "reg": loguniform(1e-5, 1e-1)}


def test_run_folder_files_load_best_and_plots(data, tmp_path):
    X, y = data
    run = tmp_path / "s1"
    seen = []
    result = search(ToySoftmax, SPACE, X, y, strategy="random", n_trials=5, seed=0, n_jobs=1, run_dir=run,
                    fixed={"epochs": 8}, metadata={"data": "blobs", "model": "toy"},
                    on_trial=lambda t, done, total: seen.append((t.trial, done, total)))
    assert [s[1:] for s in seen] == [(i, 5) for i in range(1, 6)]
    lines = (run / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 5 and {json.loads(line)["trial"] for line in lines} == set(range(5))
    config = json.loads((run / "search.json").read_text())
    assert config["space"] == {"lr": {"loguniform": [0.01, 1.0]}, "reg": {"loguniform": [1e-05, 0.1]}}
    assert config["fixed"] == {"epochs": 8} and config["seed"] == 0 and config["strategy"] == "random"
    rows = (run / "results.csv").read_text().splitlines()
    assert rows[0].startswith("trial,rung,budget,lr,reg,score,std,status") and len(rows) == 6
    best_json = json.loads((run / "best.json").read_text())
    assert best_json["params"] == result.best_params and best_json["score"] == result.best_score
    best = load_best(run)
    assert best.params == {"epochs": 8, **result.best_params} and best.space_params == result.best_params
    assert best.score == result.best_score and best.data == "blobs" and best.model == "toy"
    for name in ("scores.png", "heatmap.png"):
        png = (run / "plots" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    with pytest.raises(SearchFolderError, match="already holds a search; continue it with resume=True"):
        search(ToySoftmax, SPACE, X, y, strategy="random", n_trials=5, run_dir=run)


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_skips_finished_trials(data, tmp_path):
    X, y = data
    kwargs = dict(strategy="random", n_trials=6, seed=3, n_jobs=1, fixed={"epochs": 8})
    straight = search(ToySoftmax, SPACE, X, y, **kwargs)

    def stop_after_3(trial, done, total):
        if done == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        search(ToySoftmax, SPACE, X, y, run_dir=tmp_path / "r", on_trial=stop_after_3, **kwargs)
    assert len((tmp_path / "r" / "trials.jsonl").read_text().splitlines()) == 3
    before = tune_toys.FITS["count"]
    resumed = search(ToySoftmax, SPACE, X, y, run_dir=tmp_path / "r", resume=True, **kwargs)
    assert tune_toys.FITS["count"] - before == 3  # only the 3 unfinished trials were fitted (1 fold each)
    assert _summary(resumed) == _summary(straight)
    # more random trials later: the first 6 are reused, only the new ones run
    before = tune_toys.FITS["count"]
    more = search(ToySoftmax, SPACE, X, y, run_dir=tmp_path / "r", resume=True, **{**kwargs, "n_trials": 8})
    assert tune_toys.FITS["count"] - before == 2 and _summary(more)[:6] == _summary(straight)


def test_resume_refuses_a_different_search_and_names_the_keys(data, tmp_path):
    X, y = data
    kwargs = dict(strategy="random", n_trials=2, n_jobs=1, run_dir=tmp_path / "r")
    search(ToySoftmax, SPACE, X, y, seed=0, **kwargs)
    with pytest.raises(SearchFolderError, match=r"different search: seed \(run has 0, requested 1\)"):
        search(ToySoftmax, SPACE, X, y, seed=1, resume=True, **kwargs)
    with pytest.raises(SearchFolderError, match=r"data \(run has .*labels_sha1"):
        search(ToySoftmax, SPACE, X, np.roll(y, 1), seed=0, resume=True, **kwargs)
    with pytest.raises(SearchFolderError, match="is not a search folder"):
        search(ToySoftmax, SPACE, X, y, resume=True, **{**kwargs, "run_dir": tmp_path / "nothing"})


def test_a_cut_off_last_line_is_dropped_and_repaired(data, tmp_path):
    X, y = data
    kwargs = dict(strategy="random", n_trials=3, seed=0, n_jobs=1, run_dir=tmp_path / "r", fixed={"epochs": 5})
    first = search(ToySoftmax, SPACE, X, y, **kwargs)
    path = tmp_path / "r" / "trials.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])  # the kill hit during the third write
    with pytest.warns(SearchFolderWarning, match="dropping a cut-off last line"):
        assert len(SearchFolder(tmp_path / "r").read_trials()) == 2
    with pytest.warns(SearchFolderWarning, match="cut-off"):
        resumed = search(ToySoftmax, SPACE, X, y, resume=True, **kwargs)
    assert _summary(resumed) == _summary(first)
    untimed = [{k: v for k, v in json.loads(line).items() if not k.endswith("_time")} for line in lines]
    assert [{k: v for k, v in json.loads(line).items() if not k.endswith("_time")}
            for line in path.read_text().splitlines()] == untimed
    path.write_text(path.read_text().replace('"status": "ok"', '"status": "ok', 1))
    with pytest.raises(SearchFolderError, match="line 1 is not a trial record"):
        load_best(tmp_path / "r")


KILLED_SEARCH = """
import os, sys, time
sys.path[:0] = [{tests!r}]
from chainrule.tune import search
from tune_toys import ToyKNN, blobs

class SlowKNN(ToyKNN):
    def fit(self, X, y):
        time.sleep(0.15)
        while os.path.exists({hold!r}):  # (the lock test holds the search here)
            time.sleep(0.02)
        return super().fit(X, y)

X, y = blobs(n_per_class=20, n_classes=3, dim=4, seed=1, spread=1.5)
search(SlowKNN, {{"k": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}}, X, y, strategy="grid", n_jobs=1,
       run_dir={run!r}, resume={resume})
"""


def test_resume_after_sigkill_in_a_fresh_process(tmp_path):
    run = tmp_path / "killed"
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent(KILLED_SEARCH.format(tests=str(TESTS), run=str(run), resume=False, hold="")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    jsonl = run / "trials.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [json.loads(line)["trial"] for line in jsonl.read_text().splitlines() if line.endswith("}")]
    assert 3 <= len(finished) < 12
    script.write_text(textwrap.dedent(KILLED_SEARCH.format(tests=str(TESTS), run=str(run), resume=True, hold="")))
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=60)
    trials = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted(t["trial"] for t in trials) == list(range(12))  # each trial exactly once: none redone
    X, y = blobs(n_per_class=20, n_classes=3, dim=4, seed=1, spread=1.5)
    fresh = search(ToyKNN, {"k": list(range(1, 13))}, X, y, strategy="grid", n_jobs=1)
    by_trial = {t["trial"]: t["score"] for t in trials}
    assert [by_trial[t.trial] for t in fresh.trials] == [t.score for t in fresh.trials]


# ---- the search as a config object and a runner ----------------------------------------------------------------


def test_search_is_a_config_and_a_runner(data, tmp_path):
    from chainrule.tune import SearchConfig, SearchRunner

    X, y = data
    space = {"lr": loguniform(1e-3, 1.0)}
    config = SearchConfig(strategy="random", n_trials=3, seed=2, fixed={"epochs": 5})
    by_parts = SearchRunner(ToySoftmax, space, config, n_jobs=1, run_dir=tmp_path / "s", plots=False).run(X, y)
    by_call = search(ToySoftmax, space, X, y, strategy="random", n_trials=3, seed=2, fixed={"epochs": 5}, n_jobs=1)
    assert _summary(by_parts) == _summary(by_call)
    saved = json.loads((tmp_path / "s" / "search.json").read_text())
    assert saved["strategy"] == "random" and saved["seed"] == 2 and saved["fixed"] == {"epochs": 5}
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['n_trial'\]; the search takes strategy"):
        search(ToySoftmax, space, X, y, n_trial=3)


def test_chainrule_estimators_get_the_divergence_callback_through_fit(data):
    """MLPClassifier's fit takes trainer callbacks: an exploding loss stops the fit at that step, not at the end."""
    from chainrule.classifiers.mlp import MLPClassifier

    X, y = data
    result = search(MLPClassifier, {"lr": [50.0]}, X * 100, y, fixed={"epochs": 30, "optimizer": "sgd",
                                                                       "momentum": 0.0, "nesterov": False,
                                                                       "preprocessing": None, "batch_size": 8},
                    n_jobs=1, trap_fp=False, explode_factor=3.0)
    trial = result.trials[0]
    assert trial.status == "diverged" and "loss exploded to" in trial.message and "at step 1," in trial.message


@pytest.mark.parametrize("kills, retries, lost", [(1, 1, False), (2, 1, False), (-1, 1, True), (-1, 0, True)])
def test_a_trial_whose_worker_is_killed_is_retried(kills, retries, lost, data, tmp_path):
    """n_jobs=2 (`chainrule tune --jobs 2`), the worker running trial k=3 SIGKILLed: the search goes on, the trials
    lost with the pool run again alone, a trial that kills its worker alone is retried (retries, default 1) and
    only then recorded failed; no other trial fails."""
    from chainrule.tune import SearchConfig, SearchRunner

    X, y = data
    marker = str(tmp_path / "killed")
    config = SearchConfig(strategy="grid", fixed={"kill_k": 3, "marker": marker, "kills": kills})
    result = SearchRunner(KillsItsWorker, {"k": [1, 2, 3, 4, 5, 6]}, config, n_jobs=2, retries=retries,
                          run_dir=tmp_path / "s", plots=False).run(X, y)
    by_k = {t.params["k"]: t for t in result.trials}
    assert [k for k, t in by_k.items() if t.status != "ok"] == ([3] if lost else [])
    # killed in the pool, then alone (1 + retries times when it always kills)
    assert len(list(tmp_path.glob("killed.*"))) == (retries + 2 if lost else kills)
    if lost:
        assert "WorkerLostError" in by_k[3].message and f"died {retries + 1} time(s)" in by_k[3].message
    recorded = [json.loads(line) for line in (tmp_path / "s" / "trials.jsonl").read_text().splitlines()]
    assert sorted(t["trial"] for t in recorded) == list(range(6))  # each trial once, none lost


def test_two_resumes_of_one_search_cannot_both_run_it(tmp_path):
    """While one process runs a search, a resume of it in another process is refused naming the first one's pid
    (the resumes of one search lock it the same way); every trial is recorded once."""
    run = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    script = tmp_path / "search.py"
    hold = tmp_path / "hold"
    hold.touch()
    script.write_text(textwrap.dedent(KILLED_SEARCH.format(tests=str(TESTS), run=str(run), resume=False,
                                                           hold=str(hold))))
    first = subprocess.Popen([sys.executable, str(script)], env=env)
    jsonl = run / "trials.jsonl"
    deadline = time.monotonic() + 60
    while not (run / "search.json").exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    script.write_text(textwrap.dedent(KILLED_SEARCH.format(tests=str(TESTS), run=str(run), resume=True, hold="")))
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert f"is in use by pid {first.pid}" in r.stderr.strip().splitlines()[-1], r.stderr  # FolderInUseError
    hold.unlink()
    assert first.wait(timeout=60) == 0
    trials = [json.loads(line)["trial"] for line in jsonl.read_text().splitlines()]
    assert sorted(trials) == list(range(12))
