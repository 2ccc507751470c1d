"""The CI rule of tests/fixtures.py, run on planted test files in a pytest of their own (pytester): with ``CI`` set, a
skip anywhere but in the ``cluster`` tier fails the run, naming the test and the skip's reason; without ``CI`` a skip
stays a skip."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# The planted run loads the real hooks from the repository's conftest, and nothing else of it.
HOOKS = "from tests.fixtures import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401\n"
MARKERS = "[pytest]\nmarkers =\n    cluster: needs a live cluster\n"

SKIPPING = """
import pytest


@pytest.fixture
def tool():
    pytest.skip("promtool not found")


def test_skips_in_its_body():
    pytest.skip("no Docker daemon")


@pytest.mark.skipif(True, reason="images not built")
def test_skipped_by_a_marker():
    pass


def test_skipped_by_its_fixture(tool):
    pass


def test_passes():
    pass
"""

ALLOWED = """
import pytest


@pytest.mark.cluster
def test_on_a_cluster():
    pytest.skip("no KFP API at http://localhost:8080")


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False


def test_passes():
    pass
"""


@pytest.fixture
def planted(pytester):
    pytester.makeconftest(HOOKS)
    pytester.makeini(MARKERS)
    return pytester


def test_in_ci_every_skip_outside_the_cluster_tier_fails_naming_the_test_and_reason(planted, monkeypatch):
    monkeypatch.setenv("CI", "true")
    planted.makepyfile(test_tiers=SKIPPING)

    result = planted.runpytest()

    # A skip during setup (a marker, a fixture) becomes an error of the setup, one in the test's body a failure.
    result.assert_outcomes(passed=1, failed=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for test, reason in [
        ("test_skips_in_its_body", "no Docker daemon"),
        ("test_skipped_by_a_marker", "images not built"),
        ("test_skipped_by_its_fixture", "promtool not found"),
    ]:
        result.stdout.fnmatch_lines(
            [f"*test_tiers.py::{test} was skipped, and in CI (CI='true') only the cluster tier may skip: {reason}*"]
        )


def test_in_ci_the_cluster_tier_may_skip_and_xfail_stays_xfail(planted, monkeypatch):
    monkeypatch.setenv("CI", "true")
    planted.makepyfile(test_allowed=ALLOWED)

    result = planted.runpytest()

    result.assert_outcomes(passed=1, skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


def test_a_whole_cluster_module_may_skip_in_ci(planted, monkeypatch):
    monkeypatch.setenv("CI", "true")
    planted.makepyfile(
        test_cluster_module="import pytest\n\npytestmark = pytest.mark.cluster\n\n\n"
        "def test_run():\n    pytest.skip('no kubeconfig')\n"
    )

    result = planted.runpytest()

    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_in_ci_a_module_skipped_while_collected_fails(planted, monkeypatch):
    monkeypatch.setenv("CI", "1")
    planted.makepyfile(
        test_module_skip="import pytest\n\npytest.skip('hadolint not installed', allow_module_level=True)\n\n\n"
        "def test_never_collected():\n    pass\n"
    )

    result = planted.runpytest()

    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*test_module_skip.py was skipped, and in CI (CI='1') only the cluster tier may skip: hadolint not installed*"]
    )


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_outside_ci_a_skip_stays_a_skip(planted, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    planted.makepyfile(test_tiers=SKIPPING)

    result = planted.runpytest()

    result.assert_outcomes(passed=1, skipped=3)
    assert result.ret == pytest.ExitCode.OK
