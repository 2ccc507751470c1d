"""The rule every format's column names follow besides being unique: each column has a name. Checked once, here,
for CSV headers (before their rows are parsed), Parquet schemas and JSON Lines keys."""

from __future__ import annotations

from components.ingest_data.errors import IngestError


def check_named(names: list[str], name: str, *, delimited: bool = False) -> None:
    """Raises naming the position of each column of file ``name`` whose name is empty or only spaces: a blank CSV
    header cell (often a delimiter ending every line), a Parquet column or a JSON key ``""``. Such a column cannot be
    a feature (a request could not name it clearly) nor be excluded by name, so it is refused rather than trained on.
    ``delimited``: the names are a CSV header, whose blank last column may be a delimiter ending every line.
    """
    blank = [position for position, column in enumerate(names, start=1) if not column.strip()]
    if not blank:
        return
    positions = ", ".join(str(position) for position in blank)
    shown = sorted({repr(names[position - 1]) for position in blank})
    what = f"column {positions} of {len(names)} has" if len(blank) == 1 else f"columns {positions} of {len(names)} have"
    trailing = ", as when every line ends with a delimiter" if delimited and blank[-1] == len(names) else ""
    raise IngestError(
        f"input file {name!r}: {what} no name ({', '.join(shown)}{trailing}); every column needs a name: name it "
        "in the file, or remove the column"
    )
