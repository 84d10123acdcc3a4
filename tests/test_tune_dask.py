"""The Dask backend: a real dask.distributed LocalCluster (2 worker processes on loopback) gives the same search
results as the local backend for the same seed; an unreachable scheduler fails fast with a clear error."""

import socket
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from chainrule.tune import SchedulerUnreachableError, cross_validate, loguniform, run_tasks, search  # noqa: E402
from tune_toys import ToyKNN, ToySoftmax, blobs  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as c:
        yield c


@pytest.fixture
def data(tune_data):
    return tune_data


def _summary(result):
    return [(t.trial, t.rung, t.budget, t.params, t.status, t.score, t.scores) for t in result.trials]


def test_dask_search_equals_the_local_search(cluster, data, tmp_path):
    X, y = data
    space = {"lr": loguniform(1e-2, 1e5), "reg": [1e-4, 1e-2]}  # large lr values diverge
    kwargs = dict(strategy="halving", n_trials=9, budget=("epochs", 2, 6), eta=3, validation=3, seed=11)
    local = search(ToySoftmax, space, X, y, n_jobs=1, **kwargs)
    remote = search(ToySoftmax, space, X, y, backend="dask", scheduler=cluster.scheduler_address,
                    run_dir=tmp_path / "dask", **kwargs)
    assert _summary(remote) == _summary(local)
    assert {t.status for t in local.trials} == {"ok", "diverged"}
    assert remote.best_params == local.best_params
    assert len((tmp_path / "dask" / "trials.jsonl").read_text().splitlines()) == len(local.trials)


def test_dask_cross_validation_and_grid_equal_local(cluster, data):
    X, y = data
    address = cluster.scheduler_address
    cv_local = cross_validate(ToyKNN(k=3), X, y, k=5, seed=0, n_jobs=1)
    cv_dask = cross_validate(ToyKNN(k=3), X, y, k=5, seed=0, backend="dask", scheduler=address)
    np.testing.assert_array_equal(cv_local.scores, cv_dask.scores)
    grid = search(ToyKNN, {"k": [1, 3, 5]}, X, y, validation=4, backend="dask", scheduler=address)
    assert _summary(grid) == _summary(search(ToyKNN, {"k": [1, 3, 5]}, X, y, validation=4, n_jobs=1))


def test_real_softmax_search_on_dask_equals_local(cluster):
    from chainrule.classifiers import SoftmaxClassifier
    from chainrule.data import load_digits

    ds = load_digits()
    X, y = ds.X_train[:600], ds.y_train[:600]
    kwargs = dict(strategy="random", n_trials=4, seed=2, fixed={"epochs": 2, "batch_size": 100})
    space = {"lr": loguniform(1e-3, 1e3), "reg": loguniform(1e-5, 1e-2)}
    local = search(SoftmaxClassifier, space, X, y, n_jobs=1, **kwargs)
    remote = search(SoftmaxClassifier, space, X, y, backend="dask", scheduler=cluster.scheduler_address, **kwargs)
    assert _summary(remote) == _summary(local)


def test_tasks_run_on_both_workers(cluster):
    def where(task):
        time.sleep(0.2)
        return task, distributed.get_worker().address

    results = list(run_tasks(where, list(range(6)), backend="dask", scheduler=cluster.scheduler_address))
    assert sorted(r[0] for r in results) == list(range(6))
    assert len({r[1] for r in results}) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(data, dask_client_timeouts):
    timeouts = dask_client_timeouts
    X, y = data
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(SchedulerUnreachableError, match=rf"no Dask scheduler answered at {address} within 2 s.*"
                                                        r"dask scheduler"):
        search(ToyKNN, {"k": [1, 3]}, X, y, backend="dask", scheduler=address, connect_timeout=2)
    assert timeouts == ["2.0s"]  # the client gave up after connect_timeout


def test_bad_scheduler_arguments(data):
    X, y = data
    with pytest.raises(ValueError, match="scheduler must be an address like tcp://HOST:8786"):
        search(ToyKNN, {"k": [1]}, X, y, backend="dask", scheduler="not an address")
    with pytest.raises(ValueError, match="backend='dask' needs scheduler="):
        search(ToyKNN, {"k": [1]}, X, y, backend="dask")
    with pytest.raises(ValueError, match="backend must be one of local, dask"):
        search(ToyKNN, {"k": [1]}, X, y, backend="ray")
