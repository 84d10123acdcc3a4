"""The one value coercer of the command line and config files: flag text and TOML values as typed values.

    kinds = kinds_of("Sequence[int]")                  # frozenset({"ints"}), from an annotation
    coerce(kinds, "1024,1024", "--hidden")             # (1024, 1024); UsageError naming --hidden otherwise
    coerce(frozenset({"bool"}), "off", "--diagnostics")  # False
    show((1024, 1024)), show(None), show(True)         # "1024,1024", "none", "true"

Kinds: "int", "float", "bool", "str" (a name: lower-cased, as every name the estimators take), "text" (a string
kept as written: paths, data specs), "ints" (a sequence of integers, as a tuple) and "None" (may be none). The
estimators' parameters (``chainrule.commands.params``) and the run settings (``chainrule.commands.config``) are
coerced here, so ``true`` / ``on`` / ``yes`` / ``1`` mean the same in a flag and in a config file, and integer lists
are read one way. Ranges and choices are checked by whoever owns the value (an estimator, a run setting's bound).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from chainrule.commands.common import UsageError

__all__ = ["kinds_of", "coerce", "int_list", "show", "describe"]

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def kinds_of(annotation: str) -> frozenset[str]:
    """The kinds of values a parameter annotated ``annotation`` (a string: ``from __future__ import annotations``)
    takes from a command line: "int | None" -> {"int", "None"}, "Sequence[int]" -> {"ints"}, "Any" -> an int seed
    or none."""
    kinds = set()
    for atom in (a.strip() for a in annotation.split("|")):
        if atom.startswith(("Sequence[int]", "tuple[int", "list[int]")):
            kinds.add("ints")
        elif atom == "Any":  # random_state: an int seed or None from the command line
            kinds.update(("int", "None"))
        else:
            kinds.add(atom)
    return frozenset(kinds)


def coerce(kinds: frozenset[str], value: Any, where: str) -> Any:
    """``value`` (a flag's text or a TOML value) as one of ``kinds``; UsageError naming ``where`` otherwise."""
    if value is None:
        if "None" in kinds:
            return None
        raise UsageError(f"{where} cannot be none; give {describe(kinds)}")
    if isinstance(value, str):
        return _from_text(kinds, value.strip(), where)
    if isinstance(value, bool):
        if "bool" in kinds:
            return value
        raise UsageError(f"{where} must be {describe(kinds)}, got {value!r}")
    if isinstance(value, numbers.Number):
        if "ints" in kinds and not ({"int", "float"} & kinds):  # one integer where a list is expected: [n]
            return (_whole(value, where, value),)
        return _number(kinds, value, where)
    if isinstance(value, (list, tuple)):
        if "ints" not in kinds:
            raise UsageError(f"{where} must be {describe(kinds)}, got the list {list(value)!r}")
        return tuple(_whole(v, where, value) for v in value)
    raise UsageError(f"{where} must be {describe(kinds)}, got {value!r}")


def int_list(value: Any, where: str) -> list[int]:
    """"1024,1024" / [1024, 1024] / 100 / "" / "none" -> a list of positive integers (UsageError naming ``where``)."""
    out = list(coerce(frozenset({"ints"}), value, where))
    for n in out:
        if n < 1:
            raise UsageError(f"{where} entries must be positive integers, got {n} in {value!r}")
    return out


def _from_text(kinds: frozenset[str], text: str, where: str) -> Any:
    low = text.lower()
    if low == "none" and "None" in kinds:
        return None
    if "ints" in kinds:
        if low in ("", "none", "[]", "()"):
            return ()
        out = []
        for part in (p.strip() for p in text.strip("[]()").split(",")):
            try:
                number: Any = int(part)
            except ValueError:
                try:
                    number = float(part)
                except ValueError:
                    raise UsageError(f"{where} must be a comma-separated list of integers like 1024,1024, got "
                                     f"{text!r}") from None
            out.append(_whole(number, where, text))
        return tuple(out)
    if "bool" in kinds and low in _TRUE + _FALSE:
        return low in _TRUE
    if "int" in kinds or "float" in kinds:
        try:
            number = float(text)
        except ValueError:
            if not {"str", "text"} & kinds:
                raise UsageError(f"{where} must be {describe(kinds)}, got {text!r}") from None
        else:
            return _number(kinds, int(text) if re.fullmatch(r"[-+]?\d+", text) else number, where)
    if "text" in kinds:
        return text
    if "str" in kinds:
        return low  # every name the estimators take is lower case
    raise UsageError(f"{where} must be {describe(kinds)}, got {text!r}")


def _number(kinds: frozenset[str], value: Any, where: str) -> Any:
    if isinstance(value, numbers.Integral):
        if "int" in kinds:
            return int(value)
        if "float" in kinds:
            return float(value)
    elif "float" in kinds:
        return float(value)
    elif "int" in kinds:
        return _whole(value, where, value)
    raise UsageError(f"{where} must be {describe(kinds)}, got {value!r}")


def _whole(v: Any, where: str, whole: Any) -> int:
    """An integer from an int or an integral float; UsageError for 100.7, true, "x"."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) \
            or float(v) != int(v):
        shown = list(whole) if isinstance(whole, tuple) else whole
        raise UsageError(f"{where} must be whole numbers, got {v!r} in {shown!r}"
                         if isinstance(whole, (list, tuple, str)) else f"{where} must be a whole number, got {v!r}")
    return int(v)


def describe(kinds: frozenset[str]) -> str:
    """What ``kinds`` accept, in words: "an integer or none"."""
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a name", "text": "a string",
             "ints": "a list of integers", "None": "none"}
    return " or ".join(names[k] for k in ("ints", "int", "float", "bool", "str", "text", "None") if k in kinds)


def show(v: Any) -> str:
    """A value as the command line writes it: 1024,1024 (or "()"), true, none, 0.001."""
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v)) or "()"
    return str(v).lower() if isinstance(v, bool) or v is None else str(v)
