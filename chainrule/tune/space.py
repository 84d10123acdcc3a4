"""Search spaces: which values each hyperparameter may take.

A space maps hyperparameter names to *dimensions*:

    lists / tuples / ``range``      the values to try, in order (grid search enumerates them; random search
                                    draws one uniformly)
    ``choice(values)``              the same, spelled explicitly
    ``uniform(low, high)``          a float drawn uniformly from [low, high)
    ``loguniform(low, high)``       a float whose logarithm is uniform: 1e-4..1e-1 puts as many draws in
                                    each decade (CS231n: "search learning rates on a log scale")
    ``randint(low, high)``          an int in [low, high) (high excluded, as in NumPy and SciPy)

    >>> space = Space({"lr": loguniform(1e-4, 1e-1), "reg": [1e-4, 1e-3], "k": range(1, 4)})
    >>> space.grid_size is None  # lr is continuous: random search only
    True
    >>> [p["k"] for p in Space({"k": range(1, 4)}).grid()]
    [1, 2, 3]

A ``space.toml`` file has a ``[space]`` table (and an optional ``[fixed]`` table of values every trial uses), or
only parameter keys at the top level:

    [space]
    lr = {loguniform = [1e-4, 1e-1]}      # or "loguniform(1e-4, 1e-1)"
    reg = [1e-4, 1e-3, 1e-2]
    epochs = {range = [5, 30, 5]}         # 5, 10, 15, 20, 25
    hidden = {logspace = [64, 1024, 5]}   # 5 values evenly spaced in log between 64 and 1024 (rounded if ints)

    [fixed]
    batch_size = 200
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["Dimension", "Choice", "Uniform", "LogUniform", "RandInt", "choice", "uniform", "loguniform",
           "randint", "Space", "SpaceError", "as_dimension", "load_space", "parse_space", "check_names",
           "check_values"]


class SpaceError(ValueError):
    """A search space (or a parameter name in it) is empty or invalid; the message names the parameter."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SpaceError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise SpaceError(f"{what} must be finite, got {value!r}")
    return float(value)


def _plain(value: Any) -> Any:
    """NumPy scalars -> Python scalars, tuples -> lists: values that JSON and TOML round-trip."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Dimension:
    """One hyperparameter's allowed values. ``finite`` dimensions can be enumerated by ``values()``."""

    finite: bool = False
    log: bool = False

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def values(self) -> Sequence[Any]:
        raise SpaceError(f"{self!r} is continuous: it has no finite list of values")

    @property
    def size(self) -> int | None:
        """How many values a finite dimension has (without listing them); None if continuous."""
        return len(self.values()) if self.finite else None

    def to_spec(self) -> Any:
        """A JSON/TOML-able form that ``as_dimension`` turns back into an equal dimension."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_spec() == other.to_spec()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(repr(self))


class Choice(Dimension):
    """A finite list of values, tried in order by grid search and drawn uniformly by random search. A Python
    ``range`` (``{range = [1, 2000000]}`` in a space file) stays a range: O(1) memory whatever its length."""

    finite = True

    def __init__(self, values: Sequence[Any]):
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range, np.ndarray)):
            raise SpaceError(f"choice() needs a list of values, got {values!r}")
        if isinstance(values, range):
            self._values: Sequence[Any] = values
        else:
            self._values = [_plain(v) for v in values]
            for v in self._values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise SpaceError(f"choice() values must be finite, got {v!r}")
        if not len(self._values):
            raise SpaceError("choice() got an empty list; give at least one value")

    def values(self) -> Sequence[Any]:
        return self._values if isinstance(self._values, range) else list(self._values)

    @property
    def size(self) -> int:
        return len(self._values)

    def sample(self, rng: np.random.Generator) -> Any:
        return self._values[int(rng.integers(len(self._values)))]

    @property
    def numeric(self) -> bool:
        return isinstance(self._values, range) or all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in self._values)

    @property
    def log(self) -> bool:  # type: ignore[override]
        """Positive numbers spanning two decades or more read best on a log axis (1e-4, 1e-3, 1e-2, ...)."""
        if not self.numeric or len(self._values) < 3:
            return False
        low, high = ((min(self._values[0], self._values[-1]), max(self._values[0], self._values[-1]))
                     if isinstance(self._values, range) else (min(self._values), max(self._values)))
        return low > 0 and high / low >= 100

    def to_spec(self) -> Any:
        r = self._values
        return {"range": [r.start, r.stop, r.step]} if isinstance(r, range) else list(r)

    def __eq__(self, other: object) -> bool:  # a range equals the list of its values
        return (isinstance(other, Choice) and len(self._values) == len(other._values)
                and (self._values == other._values if isinstance(self._values, type(other._values))
                     else all(a == b for a, b in zip(self._values, other._values))))

    __hash__ = Dimension.__hash__

    def __repr__(self) -> str:
        return f"choice({self._values!r})"


class Uniform(Dimension):
    """A float drawn uniformly from [low, high)."""

    def __init__(self, low: float, high: float):
        self.low, self.high = _number(low, "uniform low"), _number(high, "uniform high")
        if not self.low < self.high:
            raise SpaceError(f"uniform(low, high) needs low < high, got low={low!r}, high={high!r}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def to_spec(self) -> Any:
        return {"uniform": [self.low, self.high]}

    def __repr__(self) -> str:
        return f"uniform({self.low!r}, {self.high!r})"


class LogUniform(Dimension):
    """A float in [low, high) whose logarithm is uniform (as many draws per decade); 0 < low < high."""

    log = True

    def __init__(self, low: float, high: float):
        self.low, self.high = _number(low, "loguniform low"), _number(high, "loguniform high")
        if not 0 < self.low < self.high:
            raise SpaceError(f"loguniform(low, high) needs 0 < low < high, got low={low!r}, high={high!r}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def to_spec(self) -> Any:
        return {"loguniform": [self.low, self.high]}

    def __repr__(self) -> str:
        return f"loguniform({self.low!r}, {self.high!r})"


class RandInt(Dimension):
    """An int in [low, high): high is excluded (NumPy's and SciPy's convention)."""

    finite = True

    def __init__(self, low: int, high: int):
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SpaceError(f"randint {name} must be an int, got {v!r}")
        self.low, self.high = int(low), int(high)
        if not self.low < self.high:
            raise SpaceError(f"randint(low, high) draws from [low, high) and needs low < high, got "
                             f"low={low!r}, high={high!r}")

    def values(self) -> range:
        return range(self.low, self.high)  # lazy: randint(0, 10**9) costs nothing until drawn

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high))

    def to_spec(self) -> Any:
        return {"randint": [self.low, self.high]}

    def __repr__(self) -> str:
        return f"randint({self.low!r}, {self.high!r})"


def choice(values: Sequence[Any]) -> Choice:
    return Choice(values)


def uniform(low: float, high: float) -> Uniform:
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    return LogUniform(low, high)


def randint(low: int, high: int) -> RandInt:
    return RandInt(low, high)


def _spaced(kind: str, args: Sequence[Any]) -> Choice:
    """``{range = [start, stop, step]}``, ``{linspace = [a, b, n]}``, ``{logspace = [a, b, n]}`` as a Choice."""
    if kind == "range":
        if not 1 <= len(args) <= 3 or any(isinstance(a, bool) or not isinstance(a, int) for a in args):
            raise SpaceError(f"range takes 1 to 3 ints like Python's range(start, stop, step), got {list(args)!r}")
        values = range(*args)  # kept lazy
        if not len(values):
            raise SpaceError(f"range{tuple(args)} is empty")
        return Choice(values)
    if len(args) != 3 or isinstance(args[2], bool) or not isinstance(args[2], int) or args[2] < 1:
        raise SpaceError(f"{kind} takes [first, last, count] with an int count >= 1, got {list(args)!r}")
    a, b = _number(args[0], f"{kind} first"), _number(args[1], f"{kind} last")
    if kind == "logspace":
        if a <= 0 or b <= 0:
            raise SpaceError(f"logspace needs positive first and last values, got {args[0]!r}, {args[1]!r}")
        grid = np.geomspace(a, b, args[2])
    else:
        grid = np.linspace(a, b, args[2])
    ints = all(isinstance(v, int) for v in args[:2])
    values = [int(round(v)) for v in grid] if ints else [float(v) for v in grid]
    return Choice(list(dict.fromkeys(values)))  # rounding may repeat ints


MAX_GRID = 1_000_000
_DISTRIBUTIONS = {"uniform": Uniform, "loguniform": LogUniform, "randint": RandInt}
_SPACED = ("range", "linspace", "logspace")
_KINDS = (*_DISTRIBUTIONS, "choice", *_SPACED)
_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.S)


def _literal(text: str) -> Any:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise SpaceError(f"expected a number, got {text!r}") from None


def as_dimension(value: Any, name: str = "parameter") -> Dimension:
    """A dimension from a list / range / Dimension, a TOML table like ``{loguniform = [1e-4, 1e-1]}``, or a
    string like ``"loguniform(1e-4, 1e-1)"``."""
    where = f"hyperparameter {name!r}"
    try:
        if isinstance(value, Dimension):
            return value
        if isinstance(value, (list, tuple, range, np.ndarray)):
            if len(value) == 0:
                raise SpaceError("empty list of values; give at least one value")
            return Choice(value)
        if isinstance(value, Mapping):
            if len(value) != 1:
                raise SpaceError(f"a distribution table has exactly one key (one of {', '.join(_KINDS)}), got "
                                 f"{dict(value)!r}")
            ((kind, args),) = value.items()
            return _from_kind(str(kind), args)
        if isinstance(value, str):
            m = _CALL.match(value)
            if not m:
                raise SpaceError(f"got the string {value!r}: write a list of values like [{value!r}] or a "
                                 f"distribution like 'loguniform(1e-4, 1e-1)'")
            kind, body = m.group(1), m.group(2)
            args = [_literal(a) for a in body.split(",")] if body.strip() else []
            return _from_kind(kind, args)
    except SpaceError as e:
        raise SpaceError(f"{where}: {e}") from None
    raise SpaceError(f"{where}: expected a list of values or a distribution (uniform, loguniform, randint, "
                     f"choice), got {value!r}; a single fixed value belongs in [fixed]")


def _from_kind(kind: str, args: Any) -> Dimension:
    kind = kind.lower()
    if kind == "choice":
        return Choice(args)
    if not isinstance(args, (list, tuple)):
        raise SpaceError(f"{kind} takes a list of arguments like {{{kind} = [a, b]}}, got {args!r}")
    if kind in _SPACED:
        return _spaced(kind, args)
    if kind in _DISTRIBUTIONS:
        if len(args) != 2:
            raise SpaceError(f"{kind} takes two arguments [low, high], got {list(args)!r}")
        return _DISTRIBUTIONS[kind](*args)
    close = difflib.get_close_matches(kind, _KINDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SpaceError(f"unknown distribution {kind!r}{hint}; valid: {', '.join(_KINDS)}")


class Space(Mapping[str, Dimension]):
    """Hyperparameter names -> dimensions (insertion order kept: the grid varies the last name fastest)."""

    def __init__(self, dims: Mapping[str, Any]):
        if not isinstance(dims, Mapping):
            raise SpaceError(f"a search space maps hyperparameter names to values, got {type(dims).__name__}")
        if not dims:
            raise SpaceError("the search space is empty: give at least one hyperparameter, e.g. "
                             "{'lr': loguniform(1e-4, 1e-1)}")
        self._dims: dict[str, Dimension] = {}
        for name, value in dims.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise SpaceError(f"hyperparameter names must be identifiers, got {name!r}")
            self._dims[name] = as_dimension(value, name)

    def __getitem__(self, name: str) -> Dimension:
        return self._dims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __repr__(self) -> str:
        return "Space({" + ", ".join(f"{k!r}: {v!r}" for k, v in self._dims.items()) + "})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and list(self._dims) == list(other._dims) and all(
            self._dims[n] == other._dims[n] for n in self._dims)

    __hash__ = None  # type: ignore[assignment]

    @property
    def grid_size(self) -> int | None:
        """Number of grid points, or None if a dimension is continuous."""
        if not all(d.finite for d in self._dims.values()):
            return None
        return math.prod(d.size for d in self._dims.values())

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of values (the cartesian product), the last name varying fastest."""
        continuous = [n for n, d in self._dims.items() if not d.finite]
        if continuous:
            raise SpaceError(f"grid search needs a finite list of values for every hyperparameter, but "
                             f"{', '.join(f'{n} = {self._dims[n]!r}' for n in continuous)} is continuous; "
                             f"give a list (e.g. {{logspace = [1e-4, 1e-1, 4]}}) or use the random strategy")
        if self.grid_size > MAX_GRID:
            raise SpaceError(f"the grid has {self.grid_size:,} combinations (more than {MAX_GRID:,}); shorten the "
                             "lists or use the random strategy")
        names = list(self._dims)
        return [dict(zip(names, combo)) for combo in itertools.product(*(self._dims[n].values() for n in names))]

    def sample(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` parameter sets drawn with ``seed``; the first m of n draws equal the m draws (prefix-stable).

        A finite space is sampled without replacement (at most ``grid_size`` sets); otherwise draw i uses its
        own generator ``default_rng([seed, i])``, so adding trials never changes the earlier ones.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise SpaceError(f"the number of trials must be a positive int, got {n!r}")
        size = self.grid_size
        if size is not None and size <= MAX_GRID:  # grid points in a random order, each built when drawn
            order = np.random.default_rng([seed, 0x5EED]).permutation(size)
            return [self._point(int(i)) for i in order[:n]]
        out = []
        for i in range(int(n)):
            rng = np.random.default_rng([seed, i])
            out.append({name: d.sample(rng) for name, d in self._dims.items()})
        return out

    def _point(self, index: int) -> dict[str, Any]:
        """The grid's point number ``index`` (in ``grid()``'s order: the last name varies fastest)."""
        point = {}
        for name in reversed(list(self._dims)):
            values = self._dims[name].values()
            index, i = divmod(index, len(values))
            point[name] = values[i]
        return {name: point[name] for name in self._dims}

    def is_log(self, name: str) -> bool:
        return bool(self._dims[name].log)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-able form; ``Space(space.to_dict()) == space``."""
        return {name: d.to_spec() for name, d in self._dims.items()}


def check_values(space: Space, candidates: Sequence[Mapping[str, Any]], fixed: Mapping[str, Any],
                 check: Any) -> None:
    """Raise SpaceError naming the first hyperparameter value that ``check(params)`` refuses (a ValueError or
    TypeError: the estimator's own parameter check), trying each distinct value of each searched hyperparameter
    among ``candidates`` with the ``fixed`` values: before any trial runs or anything is written."""
    for name in space:
        seen: set[str] = set()
        for point in candidates:
            value = point[name]
            key = repr(value)
            if key in seen:
                continue
            seen.add(key)
            try:
                check({**fixed, name: value})
            except (ValueError, TypeError) as e:
                raise SpaceError(f"hyperparameter {name!r} = {value!r} (from the space) is refused: {e}") from None


def check_names(names: Sequence[str], valid: Sequence[str], owner: str) -> None:
    """Raise SpaceError naming each unknown hyperparameter, a close match, and the valid names of ``owner``."""
    valid = sorted(valid)
    unknown = [n for n in names if n not in valid]
    if not unknown:
        return
    parts = []
    for n in unknown:
        close = difflib.get_close_matches(n, valid, n=1, cutoff=0.5)
        parts.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise SpaceError(f"unknown hyperparameter{'s' if len(unknown) > 1 else ''} {', '.join(parts)} for {owner}; "
                     f"valid names: {', '.join(valid)}")


def parse_space(table: Mapping[str, Any], source: str = "space") -> tuple[Space, dict[str, Any]]:
    """(space, fixed) from a parsed TOML document: ``[space]`` + optional ``[fixed]``, or top-level keys."""
    if "space" in table:
        extra = [k for k in table if k not in ("space", "fixed")]
        if extra:
            raise SpaceError(f"{source}: unexpected top-level key(s) {', '.join(map(repr, extra))}; a space file "
                             "holds a [space] table and an optional [fixed] table")
        dims, fixed = table["space"], table.get("fixed", {})
    else:
        fixed = table.get("fixed", {})
        dims = {k: v for k, v in table.items() if k != "fixed"}
        tables = [k for k, v in dims.items() if isinstance(v, Mapping) and not set(v) <= set(_KINDS)]
        if tables:  # e.g. [other] instead of [space]: its keys would be read as distributions
            raise SpaceError(f"{source}: unknown table{'s' if len(tables) > 1 else ''} "
                             f"{', '.join(f'[{k}]' for k in tables)}; a space file holds a [space] table and an "
                             "optional [fixed] table, or parameter keys at the top level")
    if not isinstance(dims, Mapping) or not isinstance(fixed, Mapping):
        raise SpaceError(f"{source}: [space] and [fixed] must be tables")
    try:
        space = Space(dims)
    except SpaceError as e:
        raise SpaceError(f"{source}: {e}") from None
    both = sorted(set(space) & set(fixed))
    if both:
        raise SpaceError(f"{source}: {', '.join(both)} appear in both [space] and [fixed]; keep one")
    return space, {k: _plain(v) for k, v in fixed.items()}


def load_space(path: str | Path) -> tuple[Space, dict[str, Any]]:
    """Read a space.toml file (see the module docstring): returns (space, fixed parameters)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"space file {str(path)!r} does not exist")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpaceError(f"{path}: not valid TOML: {e}") from None
    return parse_space(table, str(path))
