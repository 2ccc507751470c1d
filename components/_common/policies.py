"""Policy parameters: a dict pipeline parameter read into a frozen dataclass, checked key by key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields


def policy_from_mapping(policy_class: type, values: Mapping, parameter: str):
    """``policy_class`` (a frozen dataclass whose fields all have defaults) with the overrides in ``values``.

    Unknown keys and values of the wrong type raise ValueError naming ``parameter`` and the key. Whole floats
    become integers where the field is an int: KFP passes every number of a dict parameter as a float.
    """
    defaults = policy_class()
    known = [item.name for item in fields(policy_class)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"parameter {parameter} has unknown key(s) {unknown}; known keys: {sorted(known)}")
    converted = {}
    for key, value in values.items():
        kind = type(getattr(defaults, key))
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"parameter {parameter}[{key!r}] must be a {kind.__name__}, got {value!r}")
        converted[key] = value
    return policy_class(**converted)
