"""Benchmark: rnn, lstm and gru forecasting the yearly sunspot numbers against the baselines.

`zoo train CELL --mode many_to_many --dataset sunspots --horizon H --epochs 300 --patience 30` for
each cell and seed (window 12 years, the last 20 % of the years held out, split by time). Prints
the test MAE of every run beside persistence and the ridge autoregression on the same windows,
then, per horizon and seed, whether the best cell beat both baselines: the target. Exits 1 when
it did not. The runs go to a temporary MLflow store, so the benchmark leaves nothing behind.

    python benchmarks/forecast.py                          # horizons 1 and 3, seeds 42,1,2
    python benchmarks/forecast.py --horizons 1 --seeds 42 --cells gru
    python benchmarks/forecast.py --json figures.json      # also write the figures as JSON
"""

import argparse
import json
import os
import sys
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated recipes (default: rnn,lstm,gru)")
    parser.add_argument("--horizons", default="1,3", help="comma-separated horizons (default: 1,3)")
    parser.add_argument("--seeds", default="42,1,2", help="comma-separated seeds (default: 42,1,2)")
    parser.add_argument("--epochs", type=int, default=300, help="most epochs per run (default: 300)")
    parser.add_argument(
        "--patience", type=int, default=30, help="early-stopping patience (default: 30; 309 years make short epochs)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write one record per run to this JSON file")
    args = parser.parse_args(argv)
    if args.json:
        args.json = os.path.abspath(args.json)  # the runs below change the working directory
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import training

    cells = args.cells.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    records = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        for horizon in (int(h) for h in args.horizons.split(",")):
            for seed in seeds:
                for cell in cells:
                    started = time.perf_counter()
                    options = {
                        "mode": "many_to_many",
                        "dataset": "sunspots",
                        "horizon": horizon,
                        "seed": seed,
                        "epochs": args.epochs,
                        "patience": args.patience,
                    }
                    result = training.train(cell, {**options, "tracking_uri": f"sqlite:///{folder}/mlflow.db"})
                    m = result.metrics
                    record = {
                        "cell": cell,
                        "horizon": horizon,
                        "seed": seed,
                        "mae": m["test_mae"],
                        "rmse": m["test_rmse"],
                        "mase": m["test_mase"],
                        "persistence_mae": m["test_persistence_mae"],
                        "ridge_ar_mae": m["test_ridge_ar_mae"],
                        "epochs": int(m["epochs_trained"]),
                        "wall_seconds": time.perf_counter() - started,
                    }
                    records.append(record)
                    print(
                        f"{cell:<4} horizon={horizon} seed={seed:<3} test_mae={record['mae']:.2f} "
                        f"rmse={record['rmse']:.2f} mase={record['mase']:.3f} "
                        f"persistence={record['persistence_mae']:.2f} "
                        f"ridge_ar={record['ridge_ar_mae']:.2f} epochs={record['epochs']} "
                        f"wall_seconds={record['wall_seconds']:.0f}",
                        flush=True,
                    )
    verdicts = []
    for horizon in sorted({r["horizon"] for r in records}):
        for seed in seeds:
            runs = [r for r in records if r["horizon"] == horizon and r["seed"] == seed]
            best = min(runs, key=lambda r: r["mae"])
            met = best["mae"] < best["persistence_mae"] and best["mae"] < best["ridge_ar_mae"]
            verdicts.append(
                {"horizon": horizon, "seed": seed, "best": best["cell"], "mae": best["mae"], "met": bool(met)}
            )
            print(
                f"horizon {horizon} seed {seed}: best {best['cell']} MAE {best['mae']:.2f} against persistence "
                f"{best['persistence_mae']:.2f} and ridge AR {best['ridge_ar_mae']:.2f}: {'met' if met else 'MISSED'}"
            )
    print(table(records))
    failures = sum(not v["met"] for v in verdicts)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"runs": records, "verdicts": verdicts, "failures": failures}, handle, indent=2)
    print("all targets met" if not failures else f"{failures} (horizon, seed) pair(s) missed the target")
    return 1 if failures else 0


def table(records):
    """A Markdown table: test MAE per cell (mean and range over seeds) and the baselines, per horizon."""
    lines = ["| horizon | rnn | lstm | gru | persistence | ridge AR |", "| --- | --- | --- | --- | --- | --- |"]
    for horizon in sorted({r["horizon"] for r in records}):
        runs = [r for r in records if r["horizon"] == horizon]
        cells = []
        for cell in ("rnn", "lstm", "gru"):
            values = [r["mae"] for r in runs if r["cell"] == cell]
            cells.append(f"{sum(values) / len(values):.1f} ({min(values):.1f}-{max(values):.1f})" if values else "-")
        lines.append(
            f"| {horizon} | {' | '.join(cells)} | {runs[0]['persistence_mae']:.1f} | {runs[0]['ridge_ar_mae']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
