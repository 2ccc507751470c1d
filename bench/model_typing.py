"""What typing raw input inside the model costs: model.joblib as it is (its Pipeline types raw columns itself) beside
the same fitted model without its typing steps, fed by ``model_bundle.coerce_features`` as callers had to before.

    .venv/bin/python bench/model_typing.py [--rows 5000] [--write-docs]

Trains a HistGradientBoosting price model on ``house_prices(rows, seed=7)``, then predicts held-out rows
(``house_prices(10000, seed=8)``) both ways in this process, one OpenMP thread: mean single-row latency (300 calls
after 5 warm-up ones) and rows/s on a 10,000-row batch (10 calls). Checks both give the same predictions. Last line:
one JSON line. ``--write-docs`` also writes the table into docs/benchmarks.md ("Typing inside the model").
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # as in the model server

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _docs


def mean_ms(call, repeats: int) -> float:
    for _ in range(5):
        call()
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats * 1000


def markdown(figures: dict, rows: int) -> str:
    """The figures as docs/benchmarks.md shows them."""
    table = [
        ["single-row mean ms", f"{figures['single_row_ms_before']:.2f}", f"{figures['single_row_ms_after']:.2f}"],
        [
            "rows/s, 10,000-row batch",
            f"{figures['rows_per_s_10k_before']:,}",
            f"{figures['rows_per_s_10k_after']:,}",
        ],
    ]
    setup = (
        f"A HistGradientBoosting price model trained on {rows:,} rows, predicting held-out rows in-process with one "
        "thread: the model as it is (its Pipeline types raw columns) beside the same fitted model without its typing "
        "steps, fed by `model_bundle.coerce_features` as callers had to before."
    )
    return "\n".join(
        [setup, "", _docs.markdown_table(["measure", "before: coerce + model", "after: model on raw"], table)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="training rows")
    parser.add_argument("--write-docs", action="store_true", help="also write the figures into docs/benchmarks.md")
    args = parser.parse_args()

    import numpy as np

    import model_bundle
    from components.ingest_data.samples import house_prices
    from components.train_model.logic import train

    model, card = train(house_prices(rows=args.rows, seed=7), "price", "regression", validation_fraction=0)
    untyped = copy.deepcopy(model)
    for _, branch, _ in untyped.named_steps["preprocess"].transformers_:
        if hasattr(branch, "steps"):
            branch.steps = [step for step in branch.steps if not step[0].startswith("type_")]
    held_out = house_prices(rows=10_000, seed=8).drop(columns=["price"])
    one, batch = held_out.head(1), held_out

    def before(rows):
        return untyped.predict(model_bundle.coerce_features(rows, card.features))

    np.testing.assert_array_equal(before(batch), model.predict(batch))
    figures = {
        "single_row_ms_before": round(mean_ms(lambda: before(one), 300), 3),
        "single_row_ms_after": round(mean_ms(lambda: model.predict(one), 300), 3),
        "rows_per_s_10k_before": round(len(batch) / mean_ms(lambda: before(batch), 10) * 1000),
        "rows_per_s_10k_after": round(len(batch) / mean_ms(lambda: model.predict(batch), 10) * 1000),
    }
    print(f"{'measure':<28}{'before: coerce + model':>24}{'after: model on raw':>22}")
    print(f"{'single-row mean ms':<28}{figures['single_row_ms_before']:>24.2f}{figures['single_row_ms_after']:>22.2f}")
    print(
        f"{'rows/s, 10,000-row batch':<28}{figures['rows_per_s_10k_before']:>24,}{figures['rows_per_s_10k_after']:>22,}"
    )
    print(json.dumps(figures))
    if args.write_docs:
        written = _docs.write_section("Typing inside the model", markdown(figures, args.rows), _docs.command_line())
        print(f"wrote {written}", file=sys.stderr)


if __name__ == "__main__":
    main()
