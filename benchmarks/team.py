"""Benchmark: a team's set-up on PostgreSQL against SQLite: MLflow's logging share, tune workers.

It starts a throwaway PostgreSQL cluster (tests/postgres.py: Debian's `postgresql` binaries and the
`team` extra's driver) and two `zoo server`s on 127.0.0.1, one on a PostgreSQL database and one on a
SQLite file, each with one worker and artifacts proxied to a temporary folder. Then:

- the MLflow logging share of a fit through each server: `benchmarks/mlflow_overhead.py
  --tracking-uri http://...` (MLP recipe, per-epoch logging off the training thread), its direct
  cost (time in the logging callback plus the final flush, as a share of the fit without logging)
  and its with/without ratio;
- a `zoo tune` study on PostgreSQL (`--storage postgresql://...`, runs to the PostgreSQL server):
  the same number of trials by 1 worker and by 2 workers sharing one study, as trials per minute
  over the span of the trials (first start to last end, from the study's own timestamps) and
  over the commands' wall time (which adds each process' start and the final tested run).

    python benchmarks/team.py                      # 3 pairs of 20-epoch fits, 6 trials of 5 epochs
    python benchmarks/team.py --pairs 5 --trials 8 --json team.json

Everything lives in a temporary folder and the cluster is stopped at the end. On a shared 2-core
machine two workers compete for the same cores as the server: the second worker's gain is what
is left of them.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

# The logging's direct cost through a server on PostgreSQL over the same on SQLite, at most (points
# of the fit's time): a team's database must not make logging a noticeable part of training.
MAX_EXTRA_PERCENT = 2.0
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import gate  # noqa: E402

from tests import postgres, servers  # noqa: E402 - the tests' throwaway cluster and server
from zoo.tracking.database import safe_url  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="with/without pairs of mlflow_overhead.py (default: 3)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each mlflow_overhead.py fit (default: 20)")
    parser.add_argument("--trials", type=int, default=6, help="trials of the study, in all (default: 6)")
    parser.add_argument("--trial-epochs", type=int, default=5, help="epochs of each trial (default: 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    reason = postgres.unavailable()
    if reason:
        print(f"team.py: cannot run: {reason}", file=sys.stderr)
        return 2
    folder = tempfile.mkdtemp(prefix="zoo-team-")
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", ZOO_CHECKPOINT_DIR=f"{folder}/checkpoints")
    env.pop("MLFLOW_TRACKING_URI", None)
    figures = {"pairs": args.pairs, "epochs": args.epochs, "trials": args.trials, "trial_epochs": args.trial_epochs}
    with postgres.cluster() as cluster:
        stores = {"postgresql": cluster.create("mlflow"), "sqlite": f"sqlite:///{folder}/mlflow.db"}
        with contextlib.ExitStack() as servers:
            urls = {name: servers.enter_context(_server(store, folder, name, env)) for name, store in stores.items()}
            print(f"servers: {', '.join(f'{name} {url}' for name, url in urls.items())}", flush=True)
            for name, url in urls.items():
                figures[f"overhead_{name}"] = _overhead(url, args, folder, name, env)
            storage = cluster.create("optuna")
            for workers in (1, 2):
                figures[f"tune_{workers}_workers"] = _tune(workers, storage, urls["postgresql"], args, folder, env)
    print()
    print("| store behind the server | fit without logging | with | ratio | direct cost (callback + flush) |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("postgresql", "sqlite"):
        o = figures[f"overhead_{name}"]
        print(
            f"| {name} | {o['without_seconds']:.2f} s | {o['with_seconds']:.2f} s | {o['pair_ratio']:.3f} | "
            f"{o['callback_ms']:.0f} + {o['flush_ms']:.0f} ms = {o['direct_cost_percent']:.1f}% |"
        )
    print()
    print("| workers on one PostgreSQL study | trials | trials per minute (trial span) | wall s | per minute (wall) |")
    print("| --- | --- | --- | --- | --- |")
    for workers in (1, 2):
        t = figures[f"tune_{workers}_workers"]
        print(
            f"| {workers} | {t['trials']} | {t['per_minute_span']:.1f} | {t['wall_seconds']:.0f} | "
            f"{t['per_minute_wall']:.1f} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    pg, lite = figures["overhead_postgresql"], figures["overhead_sqlite"]
    two = figures["tune_2_workers"]
    return gate.exit_status(
        # The database behind the server adds at most 2 points of the fit to the logging's direct cost.
        gate.check(
            "direct logging cost, PostgreSQL minus SQLite behind the server (% of the fit)",
            pg["direct_cost_percent"] - lite["direct_cost_percent"],
            MAX_EXTRA_PERCENT,
            above=False,
        ),
        gate.check(
            "trials of the 2-worker study, each number once", two["trials"] * two["distinct_numbers"], args.trials
        ),
    )


@contextlib.contextmanager
def _server(store, folder, name, env):
    """`zoo server` on `store` with one worker (tests/servers.py); its URL once /health answers."""
    with servers.started(store, folder, env=env, name=f"server-{name}") as server:
        try:
            yield server.wait(timeout=300)
        except RuntimeError as error:
            raise RuntimeError(f"zoo server on {name} did not start: {error}") from None


def _overhead(url, args, folder, name, env):
    output = f"{folder}/overhead-{name}.json"
    command = [sys.executable, os.path.join(HERE, "mlflow_overhead.py"), "--tracking-uri", url]
    command += ["--pairs", str(args.pairs), "--epochs", str(args.epochs), "--json", output]
    print(f"$ {' '.join(command[1:])}   # through the server on {name}", flush=True)
    # Its exit status says whether the 1.02 ratio target was met; the figures are what is wanted here.
    subprocess.run(command, cwd=folder, env=env, check=False)
    with open(output) as handle:
        return json.load(handle)


def _tune(workers, storage, url, args, folder, env):
    """`args.trials` trials of a new study, split over `workers` processes started at once."""
    import optuna

    study = f"workers-{workers}"
    started = time.perf_counter()
    processes = []
    for index in range(workers):
        share = args.trials // workers + (1 if index < args.trials % workers else 0)
        command = [sys.executable, "-m", "zoo", "tune", "mlp", "--trials", str(share), "--pruner", "none"]
        command += ["--epochs", str(args.trial_epochs), "--patience", "0", "--study", study]
        command += ["--storage", storage, "--tracking-uri", url, "--experiment", "team-benchmark"]
        print(f"$ zoo {' '.join(command[3:])}".replace(storage, safe_url(storage)), flush=True)
        processes.append(subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL))
    codes = [process.wait(timeout=3600) for process in processes]
    wall = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"zoo tune with {workers} workers exited {codes}")
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if t.datetime_complete is not None]
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    numbers = sorted(t.number for t in trials)
    return {
        "workers": workers,
        "trials": len(done),
        "distinct_numbers": numbers == list(range(len(trials))),
        "span_seconds": span,
        "per_minute_span": 60 * len(done) / span,
        "wall_seconds": wall,
        "per_minute_wall": 60 * len(done) / wall,
    }


if __name__ == "__main__":
    raise SystemExit(main())
