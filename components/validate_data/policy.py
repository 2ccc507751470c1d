"""The validation policy (``validation_policy``): what each finding of validate_data does to the run, with the
defaults, and the two dict parameters of earlier releases it replaces (``schema_policy``, ``column_policy``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from components._common.policies import Deprecated, policy_from_mapping
from model_bundle.schema import CHECKS

PARAMETER = "validation_policy"
# What a finding does: stop the run, be reported while the run goes on, or not be looked for.
FAIL, WARN, IGNORE = "fail", "warn", "ignore"
# What an identifier column becomes: no feature (reported), a failure, or a feature like the others.
EXCLUDE, KEEP = "exclude", "keep"
IDENTIFIERS = "identifiers"  # unique integers in sequence, unique text: no magnitude, only memorised
LEAKAGE = "leakage"  # a feature that gives the target away (components.validate_data.leakage)
COLUMN_CHECKS = (IDENTIFIERS, LEAKAGE)
ACTIONS = {
    **dict.fromkeys(CHECKS, (FAIL, WARN, IGNORE)),
    IDENTIFIERS: (EXCLUDE, FAIL, KEEP),
    LEAKAGE: (FAIL, WARN, IGNORE),
}


@dataclass(frozen=True)
class ValidationPolicy:
    """What each check of validate_data does to the run. The data checks (no rows, no target, no features, a
    column without values, mixed types, infinite numbers, overlong text) always fail: no model can be trained.

    The six schema checks compare the data with the champion's schema (they do not run without a champion) and
    take `fail`, `warn` or `ignore`.

    Attributes:
        columns: Columns missing from the data, or new in it.
        types: A column's feature type or kind of values changed (integer and float are the same kind).
        nulls: Missing values where the champion's data had none, or a missing-value rate up by 5 points.
        domain: Categories outside the closed domain (at most 50 categories) of the champion's data.
        range: Numbers outside the champion's data's minimum and maximum.
        uniqueness: Repeated values in a column whose every value was unique (an identifier).
        identifiers: A feature that is an identifier (unique integers in sequence, unique text): `exclude` it from
            the features with a warning, `fail`, or `keep` it as a feature.
        leakage: A feature suspected of target leakage (alone it predicts the target almost perfectly, or without
            it a too-good fit of the whole table collapses): `fail` naming the `exclude_columns` to rerun with,
            `warn`, or `ignore` (the check does not run).
    """

    columns: str = FAIL  # a changed set of columns or types breaks the model: those fail
    types: str = FAIL
    nulls: str = WARN  # the other differences are worth a look, not a stop
    domain: str = WARN
    range: str = WARN
    uniqueness: str = WARN
    identifiers: str = EXCLUDE
    leakage: str = FAIL

    def __post_init__(self):
        for key, action in asdict(self).items():
            if action not in ACTIONS[key]:
                raise ValueError(f"parameter {PARAMETER}[{key!r}] must be one of {list(ACTIONS[key])}, got {action!r}")

    def action(self, check: str) -> str:
        """What a finding of ``check`` does: ``fail``, ``warn`` or ``ignore`` (``exclude``/``keep`` for identifiers)."""
        return getattr(self, check)


def read_validation_policy(
    values: Mapping | None, *, schema_policy: Mapping | None = None, column_policy: Mapping | None = None
) -> ValidationPolicy:
    """The ``validation_policy`` parameter read key by key, with the dict parameters of earlier releases (None when
    not given) filling the keys it does not set: ``schema_policy`` the six schema checks, ``column_policy``
    identifiers and leakage. Each key they set prints a deprecation message naming its ``validation_policy`` key."""
    deprecated = [
        _deprecated_dict("schema_policy", schema_policy, CHECKS),
        _deprecated_dict("column_policy", column_policy, COLUMN_CHECKS),
    ]
    return policy_from_mapping(ValidationPolicy, values, PARAMETER, deprecated)


def _deprecated_dict(parameter: str, values: Mapping | None, keys: tuple[str, ...]) -> Deprecated:
    """An old dict parameter as a Deprecated; a key it never had is refused naming that parameter."""
    if values is None:
        return Deprecated(parameter, None)
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ValueError(f"parameter {parameter} has unknown key(s) {unknown}; known keys: {sorted(keys)}")
    return Deprecated(parameter, dict(values))
