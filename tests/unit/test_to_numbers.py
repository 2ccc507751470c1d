"""``cleaning.to_numbers``: text to numbers as ``pd.to_numeric(errors="coerce")`` reads it, without pandas 2's crash
on text with a 10-digit exponent (GH#63650), which hex identifiers hit: a validate_data run on such a column died
with SIGSEGV and no message."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from components._common.cleaning import parses_as_number, to_numbers
from tests.fixtures import REPO_ROOT

# Each of these kills pandas 2.3's to_numeric (exponent 2**31 <= e < 2**32), the first a real md5-like digest.
CRASHING = ["8e2569614270f3d8b9e7038efac9f116", "1e3501601674f", "1e2147483648x", "1e3501601674"]


def test_text_that_crashes_pandas_is_read_in_a_child_process_without_dying():
    # In a child: were the guard gone, the crash would kill it, not the test run.
    script = (
        "import pandas as pd\n"
        "from components._common.cleaning import to_numbers, coerce_mixed_columns, parses_as_number\n"
        f"values = pd.Series({CRASHING!r} + ['12', 'x'], dtype=object)\n"
        "print(to_numbers(values).tolist())\n"
        "print(parses_as_number(values).tolist())\n"
        "print(coerce_mixed_columns(pd.DataFrame({'c': values}), ['c'])['c'].tolist())\n"
    )
    child = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-2000:]}"
    numbers, parses, coerced = child.stdout.strip().splitlines()
    assert numbers == "[nan, nan, nan, inf, 12.0, nan]"  # as pandas 3 reads them: the last number is infinite
    assert parses == "[False, False, False, True, True, False]"
    assert coerced == "[nan, nan, nan, nan, 12.0, nan]"  # coercion keeps finite numbers only


@pytest.mark.parametrize(
    "values",
    [
        ["1", " 2.5", "1e3", "-4E-2", "abc", "", None, "1_000", "0x10", "inf", "NaN"],
        [1, 2.5, True, "3", "x", None],
        [1, 2.5, None],  # objects, none of them text
    ],
)
def test_everything_else_reads_as_pandas_reads_it(values):
    series = pd.Series(values, dtype=object)
    expected = pd.to_numeric(series, errors="coerce")
    pd.testing.assert_series_equal(to_numbers(series), expected)


def test_a_huge_exponent_with_an_underscore_is_not_a_number_and_the_callers_values_are_kept():
    series = pd.Series(["1_0e1234567890", "5e1234567890"], dtype=object)
    assert to_numbers(series).tolist()[0] != to_numbers(series).tolist()[0]  # NaN
    assert to_numbers(series).tolist()[1] == np.inf
    assert series.tolist() == ["1_0e1234567890", "5e1234567890"]
    assert parses_as_number(pd.Series(["7", "1e99999999999"], dtype=object)).tolist() == [True, True]


@pytest.mark.parametrize(
    "values",
    [
        [" 12 ", "12", "x", None, "", "1e400", "-1e400", "inf", "1_000", "3.5", "3.5", "0x1f", "-0", "NaN", "x"],
        ["9007199254740993", "18446744073709551616", "7", "7", "-3"],  # beyond float precision, beyond uint64
        [1, 2.5, "3", None, "y", 1],  # objects of several kinds
        [None, None],
        ["8e2569614270f3d8b9e7038efac9f116", "12", "12", "x"],  # the guarded exponent
    ],
)
def test_coercing_parses_each_distinct_text_once_and_gives_what_every_row_parsed_gives(values):
    from components._common.cleaning import coerce_mixed_columns

    frame = pd.DataFrame(
        {"c": pd.Series(values, dtype=object), "other": range(len(values))}, index=range(5, 5 + len(values))
    )
    per_row = to_numbers(frame["c"].astype("string").str.strip()).astype("float64").replace([np.inf, -np.inf], np.nan)

    coerced = coerce_mixed_columns(frame, ["c"])

    pd.testing.assert_series_equal(coerced["c"], per_row, check_names=True)
    assert coerced["other"].tolist() == list(range(len(values)))
