"""How every step takes its settings: one dict parameter ``<noun>_policy`` read into a frozen dataclass.

The dataclass owns the defaults (one place) and documents each field in its docstring (the generated reference
reads it); ``policy_from_mapping`` checks the parameter key by key and names the key at fault. What the data *is*
(target, task, column roles, URIs) stays a plain parameter; how a step *decides* is a policy key. A parameter that
moved into a policy keeps working for one release through ``Deprecated``, with a message naming the new key.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Deprecated:
    """An old parameter whose values now belong to policy keys: ``values`` maps each policy key to the value given
    through ``parameter`` (empty, or None, when the parameter was not set)."""

    parameter: str
    values: Mapping[str, Any] | None = field(default_factory=dict)


def policy_from_mapping(policy_class: type, values: Mapping | None, parameter: str, deprecated=()):
    """``policy_class`` (a frozen dataclass whose fields all have defaults) with the overrides in ``values``.

    Unknown keys and values of the wrong type raise ValueError naming ``parameter`` and the key. Whole floats
    become integers where the field is an int: KFP passes every number of a dict parameter as a float.
    ``deprecated`` (``Deprecated`` items) fill keys the policy does not set, each with a deprecation message on
    stderr naming the new key; an old parameter and the policy setting one key to different values is an error.
    """
    merged = dict(values or {})
    for old in deprecated:
        for key, value in (old.values or {}).items():
            new = f"{parameter}[{key!r}]"
            if key in merged and merged[key] != value:
                raise ValueError(
                    f"parameter {old.parameter} (deprecated) sets {key!r} to {value!r} but {new} sets it to "
                    f"{merged[key]!r}; set only {new}"
                )
            print(
                f"DEPRECATED: parameter {old.parameter} will be removed in the next release; set {new} instead",
                file=sys.stderr,
            )
            merged[key] = value
    defaults = policy_class()
    known = [item.name for item in fields(policy_class)]
    unknown = sorted(set(merged) - set(known))
    if unknown:
        raise ValueError(f"parameter {parameter} has unknown key(s) {unknown}; known keys: {sorted(known)}")
    converted = {}
    for key, value in merged.items():
        kind = type(getattr(defaults, key))
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            kind_name = "an integer" if kind is int else f"a {kind.__name__}"
            raise ValueError(f"parameter {parameter}[{key!r}] must be {kind_name}, got {value!r}")
        converted[key] = value
    return policy_class(**converted)


def renamed(old: str, old_value: Any, new: str, new_value: Any) -> Any:
    """The value of a parameter renamed from ``old`` to ``new``: the old one when given (not None), with a
    deprecation message naming the new name; else the new one."""
    if old_value is None:
        return new_value
    print(f"DEPRECATED: parameter {old} will be removed in the next release; use {new} instead", file=sys.stderr)
    return old_value


def check_range(
    name: str, value: float, low: float = -math.inf, high: float = math.inf, high_open: bool = False, also: str = ""
) -> None:
    """Raises ValueError naming parameter ``name`` (e.g. ``gate_policy['confidence']``), ``value`` and the range
    unless ``value`` is a finite number in [``low``, ``high``] (``high`` excluded when ``high_open``); ``also``
    names another value the key accepts (e.g. " or null (guard off)"). NaN is refused: every comparison with it is
    false, so it would turn a check off silently."""
    if math.isfinite(value) and low <= value and (value < high if high_open else value <= high):
        return
    if math.isfinite(low) and math.isfinite(high):
        allowed = f"in [{low:g}, {high:g}{')' if high_open else ']'}"
    elif math.isfinite(low):
        allowed = f"finite and >= {low:g}"
    elif math.isfinite(high):
        allowed = f"finite and {'<' if high_open else '<='} {high:g}"
    else:
        allowed = "finite"
    raise ValueError(f"parameter {name} must be {allowed}{also}, got {value!r}")
