"""`zoo compare`: the finished runs of an experiment side by side in the terminal, best first.

    zoo compare
    zoo compare --experiment digits --metric test_loss
    zoo compare --recipe mlp --tracking-uri http://127.0.0.1:5000

One row per run: its rank, name and id, recipe, model, the ranking metric and the other test
metrics, how long it ran, whether it beat its trivial baseline (`learned`: yes, NO, or - for a run
without a verdict; see `zoo.training.baselines`), and the parameters whose values differ between the runs shown (so two
runs of the same recipe show what was changed, not the 40 params they share).
"""

import os

from zoo.errors import ZooError, closest

DEFAULT_EXPERIMENT = "zoo"
# Params shown as their own columns, or that describe the data rather than a choice someone made.
_NOT_KEY = ("recipe", "model", "strategy", "replicas")
_MAX_METRICS = 5
_MAX_PARAMS = 8
_MAX_VALUE = 24
# The `zoo.learned` tag (did the run beat its trivial baseline?) as the `learned` column shows it.
_LEARNED = {"true": "yes", "false": "NO"}


def add_parser(commands):
    compare = commands.add_parser(
        "compare",
        help="print the runs of an experiment side by side, best first",
        description=__doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[2].replace("\n", " "),
    )
    compare.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        help=f"experiment to read (default: {DEFAULT_EXPERIMENT!r}, where `zoo train` logs)",
    )
    compare.add_argument(
        "--metric",
        help="test metric that ranks the runs (default: test_accuracy, "
        "else test_loss); losses and errors rank lowest first, the rest highest first",
    )
    compare.add_argument("--recipe", help="only runs of this recipe")
    compare.add_argument("--limit", type=int, default=20, help="show at most this many runs (default: 20)")
    compare.add_argument(
        "--tracking-uri", help="store or server to read (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    compare.set_defaults(handler=run)


def run(args):
    """Print the comparison table for parsed `zoo compare` arguments; return the exit status."""
    import mlflow

    from zoo import tracking

    if args.limit < 1:
        raise ZooError(f"--limit must be at least 1. Received: {args.limit}")
    _check_local_store(args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    uri = tracking.configure(args.tracking_uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        names = [e.name for e in client.search_experiments()]
        raise ZooError(
            f"No experiment '{args.experiment}' in {uri}.{closest(args.experiment, names)} "
            f"Experiments: {', '.join(names) or 'none yet (train a recipe first)'}."
        )
    query = "attributes.status = 'FINISHED'"
    if args.recipe:
        query += f" and tags.`zoo.recipe` = '{args.recipe}'"
    runs = client.search_runs([experiment.experiment_id], filter_string=query, max_results=1000)
    if not runs:
        which = f" of recipe '{args.recipe}'" if args.recipe else ""
        print(f"No finished runs{which} in experiment '{args.experiment}' ({uri}).")
        return 0
    print(format_table(rank(runs, args.metric)[: args.limit], _metric(runs, args.metric)))
    return 0


def _check_local_store(uri):
    # Reading a SQLite store that does not exist would quietly create an empty one (MLflow even
    # creates the default ./mlflow.db when asked for the tracking URI).
    if uri is None:
        path = "mlflow.db"
        if os.path.isdir("mlruns"):  # MLflow's default falls back to an existing ./mlruns store
            return
    elif uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
    else:
        return
    if not os.path.exists(path):
        raise ZooError(
            f"No MLflow store at {os.path.abspath(path)}: train a recipe here first, or pass "
            "--tracking-uri (e.g. sqlite:///path/to/mlflow.db or http://HOST:PORT)."
        )


def _metric(runs, metric=None):
    from zoo import tracking

    logged = set().union(*(run.data.metrics for run in runs))
    if metric is None:
        return tracking.main_metric(logged)
    if metric not in logged:
        tests = sorted(name for name in logged if name.startswith("test_"))
        raise ZooError(
            f"No run logged the metric '{metric}'.{closest(metric, logged)} "
            f"Test metrics logged: {', '.join(tests) or 'none'}."
        )
    return metric


def rank(runs, metric=None):
    """Return the runs best first on `metric` (default: see `tracking.main_metric`).

    Runs without the metric come last, newest first.
    """
    from zoo import tracking

    metric = _metric(runs, metric)
    newest_first = sorted(runs, key=lambda run: -run.info.start_time)
    if metric is None:
        return newest_first
    sign = -1 if tracking.greater_is_better(metric) else 1
    scored = [run for run in newest_first if metric in run.data.metrics]
    scored.sort(key=lambda run: sign * run.data.metrics[metric])
    return scored + [run for run in newest_first if metric not in run.data.metrics]


def key_params(runs):
    """Names of the params worth showing: those whose values differ between `runs`."""
    names = sorted(set().union(*(run.data.params for run in runs)))
    names = [n for n in names if n not in _NOT_KEY and (not n.startswith("data.") or n == "data.name")]
    differing = [n for n in names if len({run.data.params.get(n) for run in runs}) > 1]
    return differing or [n for n in ("epochs", "batch_size") if n in names]


def format_table(runs, metric=None):
    """Return the comparison table of `runs` (already ranked) as text."""
    tests = sorted({name for run in runs for name in run.data.metrics if name.startswith("test_")} - {metric})
    metrics = ([metric] if metric else []) + tests[:_MAX_METRICS]
    params = key_params(runs)
    header = ["#", "run", "id", "recipe", "model", *metrics, "duration", "learned", "params"]
    rows = []
    for number, run in enumerate(runs, 1):
        tags, values = run.data.tags, run.data.metrics
        shown = [f"{_short_param(n)}={_clip(run.data.params[n])}" for n in params if n in run.data.params]
        if len(shown) > _MAX_PARAMS:
            shown = shown[:_MAX_PARAMS] + ["..."]
        rows.append(
            [
                str(number),
                _clip(run.info.run_name or ""),
                run.info.run_id[:8],
                tags.get("zoo.recipe") or run.data.params.get("recipe", "-"),
                tags.get("zoo.model") or run.data.params.get("model", "-"),
                *(f"{values[name]:.4g}" if name in values else "-" for name in metrics),
                _duration(run.info.start_time, run.info.end_time),
                _LEARNED.get(tags.get("zoo.learned", ""), "-"),
                " ".join(shown),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    # Numbers right-aligned, text left-aligned; the last column is not padded.
    numeric = {0} | set(range(5, 5 + len(metrics) + 1))
    lines = []
    for row in [header, *rows]:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        cells[-1] = row[-1]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _short_param(name):
    return name[len("model.") :] if name.startswith("model.") else name


def _clip(value):
    value = str(value)
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 3] + "..."


def _duration(start_ms, end_ms):
    if not start_ms or not end_ms:
        return "-"
    seconds = (end_ms - start_ms) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
