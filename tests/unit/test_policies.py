"""The one way a step takes its settings: a dict parameter read into a typed policy, old parameters deprecated."""

from dataclasses import dataclass, field

import pytest

from components._common.policies import Deprecated, policy_from_mapping, renamed


@dataclass(frozen=True)
class ExamplePolicy:
    level: int = 3
    ratio: float = 0.5
    strict: bool = False
    limits: dict = field(default_factory=dict)


def test_defaults_come_from_the_policy_class():
    assert policy_from_mapping(ExamplePolicy, {}, "example_policy") == ExamplePolicy()
    assert policy_from_mapping(ExamplePolicy, None, "example_policy") == ExamplePolicy()


def test_kfp_floats_become_ints_and_ints_floats():
    policy = policy_from_mapping(ExamplePolicy, {"level": 5.0, "ratio": 1}, "example_policy")
    assert policy.level == 5 and isinstance(policy.level, int)
    assert policy.ratio == 1.0 and isinstance(policy.ratio, float)


def test_unknown_key_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"example_policy has unknown key\(s\) \['levle'\]; known keys: \['level'"):
        policy_from_mapping(ExamplePolicy, {"levle": 1}, "example_policy")


@pytest.mark.parametrize(
    ("key", "value"), [("level", 2.5), ("level", True), ("ratio", "high"), ("strict", 1), ("limits", [1])]
)
def test_wrong_type_is_named(key, value):
    with pytest.raises(ValueError, match=rf"example_policy\[{key!r}\] must be a"):
        policy_from_mapping(ExamplePolicy, {key: value}, "example_policy")


def test_a_deprecated_parameter_still_works_and_names_the_new_key(capsys):
    policy = policy_from_mapping(ExamplePolicy, {"ratio": 0.2}, "example_policy", [Deprecated("level", {"level": 7})])
    assert policy == ExamplePolicy(level=7, ratio=0.2)
    assert "parameter level will be removed in the next release; set example_policy['level'] instead" in (
        capsys.readouterr().err
    )


def test_an_unset_deprecated_parameter_says_nothing(capsys):
    assert policy_from_mapping(ExamplePolicy, {}, "example_policy", [Deprecated("level", None)]) == ExamplePolicy()
    assert capsys.readouterr().err == ""


def test_a_deprecated_parameter_agreeing_with_the_policy_is_accepted():
    policy = policy_from_mapping(ExamplePolicy, {"level": 7}, "example_policy", [Deprecated("level", {"level": 7})])
    assert policy.level == 7


def test_a_deprecated_parameter_contradicting_the_policy_is_refused():
    with pytest.raises(ValueError, match=r"parameter level \(deprecated\) sets 'level' to 1 but example_policy"):
        policy_from_mapping(ExamplePolicy, {"level": 7}, "example_policy", [Deprecated("level", {"level": 1})])


def test_a_renamed_parameter_given_wins_with_a_message_naming_the_new_name(capsys):
    assert renamed("data_uri", "file:///old.csv", "source_uri", "sample://x") == "file:///old.csv"
    assert "parameter data_uri will be removed in the next release; use source_uri instead" in capsys.readouterr().err


def test_a_renamed_parameter_not_given_leaves_the_new_one(capsys):
    assert renamed("data_uri", None, "source_uri", "sample://x") == "sample://x"
    assert capsys.readouterr().err == ""
