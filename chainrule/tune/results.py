"""``SearchResult``: every trial of a search, the best one, and the table printed at the end.

Ranking: only ``status == "ok"`` trials rank. A later successive-halving rung (a larger budget) beats an earlier
one, since scores at different budgets are not comparable; within a rung the higher mean validation score wins,
then the smaller spread across folds, then the lower trial number (so ties resolve the same way every time).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from chainrule.tune.space import Space
from chainrule.tune.trial import Trial

__all__ = ["SearchResult", "rank_trials", "best_trial", "fit_params", "NoSuccessfulTrialError", "format_value"]


class NoSuccessfulTrialError(RuntimeError):
    """Every trial of a search diverged or failed, so there is no best configuration."""


def _rank_key(t: Trial) -> tuple[Any, ...]:
    return (-t.rung, -(t.score if t.score is not None else -math.inf), t.std or 0.0, t.trial)


def rank_trials(trials: Sequence[Trial]) -> list[Trial]:
    """The ok trials, best first (see the module docstring)."""
    return sorted((t for t in trials if t.ok), key=_rank_key)


def best_trial(trials: Sequence[Trial]) -> Trial:
    ranked = rank_trials(trials)
    if ranked:
        return ranked[0]
    counts = Counter(t.status for t in trials)
    if not trials:
        raise NoSuccessfulTrialError("the search has no finished trials yet")
    first = next(t for t in trials if not t.ok)
    raise NoSuccessfulTrialError(
        f"no trial finished ok ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); first problem, "
        f"trial {first.trial} with {first.params}: {first.message}")


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.4g}"
    if isinstance(v, list):
        return ",".join(format_value(x) for x in v)
    return str(v)


@dataclass
class SearchResult:
    """All trials of a search (``trials``, in the order they were planned) and its configuration.

    ``best`` is the best ok trial, ``best_params`` its hyperparameters from the space, ``best_fit_params`` the
    full keyword arguments to build the estimator with (fixed values and the halving budget included).
    """

    trials: list[Trial]
    space: Space
    config: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    elapsed: float = 0.0

    @property
    def best(self) -> Trial:
        return best_trial(self.trials)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best.params)

    @property
    def best_score(self) -> float:
        return float(self.best.score)  # type: ignore[arg-type]

    @property
    def best_fit_params(self) -> dict[str, Any]:
        return fit_params(self.config, self.best)

    def ranked(self) -> list[Trial]:
        return rank_trials(self.trials)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(t.status for t in self.trials)
        return {s: c.get(s, 0) for s in ("ok", "diverged", "failed")}

    @property
    def final_trials(self) -> list[Trial]:
        """One record per candidate: its evaluation at the largest budget it reached."""
        last: dict[int, Trial] = {}
        for t in self.trials:
            if t.trial not in last or t.rung >= last[t.trial].rung:
                last[t.trial] = t
        return [last[k] for k in sorted(last)]

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per trial: trial, rung, budget, each hyperparameter, score, std, status, times."""
        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"trial": t.trial, "rung": t.rung, "budget": t.budget}
            row.update({name: t.params.get(name) for name in self.space})
            row.update({"score": t.score, "std": t.std, "status": t.status, "fit_time": round(t.fit_time, 4),
                        "score_time": round(t.score_time, 4), "cpu_time": round(t.cpu_time, 4),
                        "scores": json.dumps(t.scores),
                        "message": t.message})
            rows.append(row)
        return rows

    def to_csv(self, path: str | Path) -> Path:
        rows = self.rows()
        path = Path(path)
        from chainrule.utils.atomic import atomic_open

        with atomic_open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["trial"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else json.dumps(v) if isinstance(v, list) else v)
                                 for k, v in row.items()})
        return path

    def table(self, top: int | None = 10) -> str:
        """A plain-text table of the ``top`` ranked candidates (each at the largest budget it reached), then a
        line counting ok, diverged and failed evaluations."""
        halving = any(t.rung for t in self.trials)
        ranked = rank_trials(self.final_trials) if halving else self.ranked()
        ranked = ranked[:top] if top else ranked
        names = list(self.space)
        cv = any(len(t.scores) > 1 for t in self.trials)
        head = ["rank", "trial", *(["budget"] if halving else []), *names, "val score", *(["± std"] if cv else []),
                "fit s"]
        body = []
        for i, t in enumerate(ranked, 1):
            body.append([str(i), str(t.trial), *([format_value(t.budget)] if halving else []),
                         *(format_value(t.params.get(n)) for n in names), f"{t.score:.4f}",
                         *([f"{t.std:.4f}"] if cv else []), f"{t.fit_time:.2f}"])
        widths = [max(len(r[j]) for r in [head, *body]) for j in range(len(head))]
        lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths)))
                 for r in [head, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        c = self.counts
        lines.append(f"{len(self.trials)} trials: {c['ok']} ok, {c['diverged']} diverged, {c['failed']} failed")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """The best trial and the counts, JSON-able (best.json in a run folder)."""
        best = self.best
        return {"params": best.params, "fit_params": self.best_fit_params, "score": best.score, "std": best.std,
                "scores": best.scores, "trial": best.trial, "rung": best.rung, "budget": best.budget,
                "counts": self.counts, "metadata": self.config.get("metadata", {}),
                "elapsed_s": round(self.elapsed, 3)}


def fit_params(config: dict[str, Any], trial: Trial) -> dict[str, Any]:
    """The estimator keyword arguments of a trial: fixed values, then the trial's params, then its budget."""
    out = dict(config.get("fixed") or {})
    out.update(trial.params)
    budget = config.get("budget")
    if budget and budget.get("param") != "n_samples" and trial.budget is not None:
        out[budget["param"]] = trial.budget
    return out
