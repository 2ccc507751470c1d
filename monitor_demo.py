"""The monitoring loop on this machine, start to finish (`make monitor-demo`).

1. trains a champion on last year's houses and serves it (the training pipeline, deploy_target=local);
2. replays this year's market to the server, where big, new, central homes now sell and prices have risen 10%: the
   server's live `model_feature_drift` gauges rise;
3. runs the monitoring pipeline on that batch (labelled, as sales close): drift is detected, the training
   pipeline runs again on this year's sales, the retrained model passes the gate against the champion and is served;
4. prints what happened and where the reports are.

Why the retraining run trains on this year's sales only: the gate scores champion and challenger on the retraining
run's held-out rows, a random split of what it ingests. With both years ingested, those rows would include rows the
champion was trained on, and it would be scored on rows it has seen; this year's rows are new to both models. Why
prices rose too: when only the mix of homes shifts, the champion still prices them about as well as a retrained model
(measured: a tie, which the gate rightly keeps); retraining earns its place when what homes sell for has changed.

    python monitor_demo.py [--state-dir local_state] [--port 9000] [--metrics-port 6000]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

import pandas as pd

import run_local
from components._common import registry
from components.deploy_model.manifests import deployment_name
from components.ingest_data.samples import house_prices
from serving.oip import table_body

MODEL_NAME = "house-prices"
REPLAY_ROWS_PER_REQUEST = 50
PRICE_GROWTH = 0.10  # this year's prices over last year's, for the same home


def write_data(folder: Path) -> tuple[Path, Path]:
    """Last year's sales (the training data) and this year's, drawn from a market of bigger, newer, central homes
    whose prices rose by PRICE_GROWTH."""
    folder.mkdir(parents=True, exist_ok=True)
    last_year = folder / "houses-2025.csv"
    house_prices(rows=1500, seed=21).to_csv(last_year, index=False)
    market = house_prices(rows=6000, seed=23)
    this_year = market[
        (market.size_sqm > market.size_sqm.median())
        & (market.age_years < market.age_years.median())
        & (market.distance_to_center_km < market.distance_to_center_km.median())
    ].head(600)
    this_year = this_year.assign(price=(this_year.price * (1 + PRICE_GROWTH)).round(-2))
    batch = folder / "houses-2026.csv"
    this_year.to_csv(batch, index=False)
    return last_year, batch


def replay(batch: Path, infer_url: str) -> None:
    """Sends the batch's rows to the server as OIP table requests, as production traffic would arrive."""
    rows = pd.read_csv(batch).drop(columns=["price"])
    for start in range(0, len(rows), REPLAY_ROWS_PER_REQUEST):
        request = urllib.request.Request(
            infer_url,
            data=table_body(rows.iloc[start : start + REPLAY_ROWS_PER_REQUEST]),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def live_drift(metrics_url: str) -> dict[str, float]:
    """The server's model_feature_drift gauge per feature."""
    with urllib.request.urlopen(metrics_url, timeout=30) as response:
        text = response.read().decode()
    return {
        match["feature"]: float(match["value"])
        for match in re.finditer(
            r'^model_feature_drift\{[^}]*feature="(?P<feature>[^"]+)"[^}]*\} (?P<value>\S+)$', text, re.M
        )
    }


def latest_run(state_dir: Path, pipeline: str) -> Path:
    return max((state_dir / "pipeline_root").glob(f"{pipeline}-*"), key=lambda path: path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, default=Path("local_state"))
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--metrics-port", type=int, default=6000)
    args = parser.parse_args(argv)
    # Before the first run: the demo's own registry reads draw no progress bars either.
    run_local.without_progress_bars()
    state_dir = (args.state_dir / "monitor-demo").resolve()
    serving = ["deploy_target=local", f"serving_port={args.port}", f"metrics_port={args.metrics_port}"]
    # The local server answers under the name the deploy step gives the model (the cluster's graph node name).
    infer_url = f"http://127.0.0.1:{args.port}/v2/models/{deployment_name(MODEL_NAME)}/infer"
    metrics_url = f"http://127.0.0.1:{args.metrics_port}/metrics"
    last_year, batch = write_data(state_dir / "data")

    print(f"== 1. training a champion on {last_year.name} and serving it", flush=True)
    code = run_local.main(["training", "--state-dir", str(state_dir), f"source_uri={last_year}", *serving])
    if code:
        print(
            f"error: the first training run failed (exit code {code}; its error is above): nothing to monitor",
            file=sys.stderr,
        )
        return code
    tracking_uri = registry.local_tracking_uri(state_dir)
    first = registry.champion(tracking_uri, MODEL_NAME)
    if first is None:
        print("error: the first model was not deployed", file=sys.stderr)
        return 1

    print(f"\n== 2. replaying {batch.name} to {infer_url}", flush=True)
    replay(batch, infer_url)
    print("live drift per feature (model_feature_drift):", json.dumps(live_drift(metrics_url), indent=1))

    print(f"\n== 3. the monitoring pipeline on {batch.name}", flush=True)
    code = run_local.main(
        [
            "monitoring",
            "--state-dir",
            str(state_dir),
            f"batch_uri={batch}",
            # This year's window only: the champion must not be scored on its own training rows (see above).
            f"retrain_source_uri={batch}",
            *serving,
        ]
    )
    if code:
        return code
    champion = registry.champion(tracking_uri, MODEL_NAME)
    run_dir = latest_run(state_dir, "monitoring-pipeline")
    print("\n== 4. what happened")
    print("\n".join((run_dir / "detect-drift" / "summary").read_text().split("\n\n")[:2]))
    for reasons in sorted(run_dir.glob("**/gate-model/reasons")):
        # The check against the champion: both r2 figures and the gain's confidence interval.
        checks = [line for line in reasons.read_text().splitlines() if line.startswith("- ")]
        print(next((line for line in checks if "champion v" in line), ""))
    verdict = "replaced" if champion.version != first.version else "kept"
    print(f"champion: v{first.version} -> v{champion.version} ({verdict}), served at {infer_url}")
    print(f"drift report (Evidently): {run_dir / 'detect-drift' / 'report'}")
    print(f"drift summary: {run_dir / 'detect-drift' / 'summary'}")
    for report in sorted(run_dir.glob("**/evaluate-model/report")):
        print(f"evaluation report of the retrained model: {report}")
    for reasons in sorted(run_dir.glob("**/gate-model/reasons")):
        print(f"gate decision: {reasons}")
    print(f"registry: .venv/bin/mlflow ui --backend-store-uri {tracking_uri}")
    print(f"stop the server: make stop STATE_DIR={state_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
