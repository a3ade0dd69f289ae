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
_MAX_VALUE = 24
WIDTH = 100  # a terminal's width the table fits by default (--wide: no limit)
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
        "--format",
        choices=("text", "csv", "json", "markdown"),
        default="text",
        help="text (default: a table that fits 100 columns), or csv, json, markdown for scripts and notes "
        "(every metric and differing param, nothing clipped)",
    )
    compare.add_argument("--wide", action="store_true", help="text: as wide as the table needs, nothing clipped")
    compare.add_argument(
        "--tracking-uri", help="store or server to read (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    # MLflow's client only: no TensorFlow, no Keras (the table is printed in about a second).
    compare.set_defaults(handler=run, loads_tensorflow=False)


def run(args):
    """Print the comparison table for parsed `zoo compare` arguments; return the exit status."""
    from zoo import status

    if args.limit < 1:
        raise ZooError(f"--limit must be at least 1. Received: {args.limit}")
    given = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    _check_local_store(given)
    # A local SQLite store is read with sqlite3 in milliseconds; MLflow's client takes seconds to
    # import, and answers for any other store, or where the quick reader is unsure.
    status.step(f"compare: reading the runs of experiment '{args.experiment}'")
    from zoo.tracking import sqlite_runs

    runs = sqlite_runs.finished_runs(given, args.experiment, args.recipe)
    uri = given or "sqlite:///mlflow.db"
    if runs is None:
        uri, runs = _client_runs(args)
    # A study's parent run holds its trials' summary, not a training of its own.
    runs = [r for r in runs if r.data.tags.get("zoo.tune") != "study"]
    if not runs:
        which = f" of recipe '{args.recipe}'" if args.recipe else ""
        print(f"No finished runs{which} in experiment '{args.experiment}' ({uri}).")
        return 0
    metric = _metric(runs, args.metric)
    ranked = rank(runs, metric)[: args.limit]
    fmt = getattr(args, "format", "text")
    if fmt == "text":
        print(format_table(ranked, metric, width=None if getattr(args, "wide", False) else WIDTH))
    else:
        print(export(ranked, metric, fmt))
    return 0


def _client_runs(args):
    """(tracking URI, finished runs of the experiment) through MLflow's client, lost runs repaired on the way."""
    import mlflow

    from zoo import tracking

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
    return uri, client.search_runs([experiment.experiment_id], filter_string=query, max_results=1000)


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

    Then the search trials that have no test metric, best first on their validation metric
    (`objective_*`); then the other runs without the metric (or with NaN), newest first.
    """
    from zoo import tracking

    metric = _metric(runs, metric)
    newest_first = sorted(runs, key=lambda run: -run.info.start_time)
    if metric is None:
        return newest_first
    sign = -1 if tracking.greater_is_better(metric) else 1
    scored = [run for run in newest_first if _scored(run, metric)]
    scored.sort(key=lambda run: sign * run.data.metrics[metric])
    trials = [run for run in newest_first if metric not in run.data.metrics and _validation(run)[0]]
    trials.sort(key=lambda run: (-1 if tracking.greater_is_better(_validation(run)[0]) else 1) * _validation(run)[1])
    # A NaN (a diverged run) is no score: it would sort anywhere, even first.
    chosen = {id(run) for run in scored + trials}
    rest = [run for run in newest_first if id(run) not in chosen]
    return scored + trials + rest


def _scored(run, metric):
    value = run.data.metrics.get(metric)
    return value is not None and value == value


def _validation(run):
    """(name, value) of the validation metric a search trial was judged on, or (None, None)."""
    for name, value in run.data.metrics.items():
        if name.startswith("objective_"):
            return name[len("objective_") :], value
    return None, None


def key_params(runs):
    """Names of the params worth showing: those that take two values or more among `runs`.

    A param that some runs lack (another recipe's option) differs only where runs that have it
    disagree: two recipes' runs do not list all their options.
    """
    names = sorted(set().union(*(run.data.params for run in runs)))
    names = [n for n in names if n not in _NOT_KEY and (not n.startswith("data.") or n == "data.name")]
    return [n for n in names if len({run.data.params[n] for run in runs if n in run.data.params}) > 1]


def display_name(run):
    """The run's name; a search trial's says which study and trial it is (`mlp-20261207-1657-t3`)."""
    tags = run.data.tags
    if tags.get("zoo.tune") == "trial" and tags.get("zoo.study") and tags.get("zoo.trial"):
        return f"{tags['zoo.study']}-t{tags['zoo.trial']}"
    return run.info.run_name or ""


def rows(runs, metric=None):
    """The table as (header, rows of cells, best row indices), every value whole (exports use it)."""
    tests = sorted({name for run in runs for name in run.data.metrics if name.startswith("test_")} - {metric})
    metrics = ([metric] if metric else []) + tests
    params = key_params(runs)
    validations = {_validation(run)[0] for run in runs} - {None}
    # One validation metric (the usual case) names its column; several are named in each cell.
    val_header = next(iter(validations)) if len(validations) == 1 else "validation"
    header = [
        "#",
        "run",
        "id",
        "recipe",
        "model",
        *metrics,
        *([val_header] if validations else []),
        "duration",
        "learned",
    ]
    header += [_short_param(n) for n in params]
    table, best = [], set()
    for number, run in enumerate(runs, 1):
        tags, values = run.data.tags, run.data.metrics
        name, value = _validation(run)
        row = [
            str(number),
            display_name(run),
            run.info.run_id,
            tags.get("zoo.recipe") or run.data.params.get("recipe", "-"),
            tags.get("zoo.model") or run.data.params.get("model", "-"),
            *(f"{values[m]:.4g}" if m in values else "-" for m in metrics),
            *([_validation_cell(name, value, len(validations) > 1)] if validations else []),
            _duration(run.info.start_time, run.info.end_time),
            _LEARNED.get(tags.get("zoo.learned", ""), "-"),
            *(run.data.params.get(n, "") for n in params),
        ]
        table.append(row)
    if runs and metric and _scored(runs[0], metric):
        best.add(0)  # ranked first on the test metric
    first_trial = next(
        (i for i, run in enumerate(runs) if metric not in run.data.metrics and _validation(run)[0]), None
    )
    if first_trial is not None:
        best.add(first_trial)  # the best search trial on its validation metric
    return header, table, best


def _validation_cell(name, value, named):
    if name is None:
        return "-"
    return f"{name}={value:.4g}" if named else f"{value:.4g}"


def format_table(runs, metric=None, width=WIDTH):
    """Return the comparison table of `runs` (already ranked) as text, at most `width` columns wide
    (None: as wide as it needs). Less important columns go first: metrics beyond the ranking one,
    then the ids; the params column is clipped last."""
    header, table, best = rows(runs, metric)
    marked = [[("*" if i in best else "") + row[0], *row[1:]] for i, row in enumerate(table)]
    params_at = header.index("learned") + 1
    named = header[params_at:]
    cells = [
        [*row[:params_at], " ".join(f"{n}={_clip(_number(v))}" for n, v in zip(named, row[params_at:]) if v != "")]
        for row in marked
    ]
    cols = [*header[:params_at], "params"]
    if all(row[3] == row[4] for row in cells):  # every model is its recipe's own: one column says it
        cols = cols[:4] + cols[5:]
        cells = [row[:4] + row[5:] for row in cells]
    for row in cells:
        row[1] = _clip(row[1], keep_end=True)
        row[2] = row[2][:8]
    numeric = {0} | {i for i, name in enumerate(cols) if i >= 4 and name not in ("model", "learned", "params")}
    if width is not None:
        # Drop the extra test metrics, then the id, until the fixed columns leave room for params.
        droppable = [i for i, name in enumerate(cols) if name.startswith("test_") and name != metric][::-1]
        droppable += [cols.index("id")]
        room = min(max(len(row[-1]) for row in cells), 40)  # what the params column asks for
        while _width(cols, cells, exclude_last=True) + room > width and droppable:
            index = droppable.pop(0)
            cols = cols[:index] + cols[index + 1 :]
            cells = [row[:index] + row[index + 1 :] for row in cells]
            numeric = {i - (i > index) for i in numeric if i != index}
    text = _render(cols, cells, numeric)
    if width is not None:
        text = "\n".join(line if len(line) <= width else line[: width - 3] + "..." for line in text.splitlines())
    if best:
        text += "\n* best" + (f" on {metric}" if metric and 0 in best else "")
        if len(best) > 1 or 0 not in best:
            text += "; best search trial on its validation metric"
    return text


def _width(cols, cells, exclude_last=False):
    count = len(cols) - (1 if exclude_last else 0)
    return sum(max(len(str(row[i])) for row in [cols, *cells]) + 2 for i in range(count))


def _render(cols, cells, numeric):
    widths = [max(len(row[i]) for row in [cols, *cells]) for i in range(len(cols))]
    lines = []
    for row in [cols, *cells]:
        shown = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        shown[-1] = row[-1]
        lines.append("  ".join(shown).rstrip())
    return "\n".join(lines)


def export(runs, metric, fmt):
    """The table as csv, json or markdown: every column, nothing clipped, the best rows marked."""
    header, table, best = rows(runs, metric)
    records = [dict(zip(header, row), best=i in best) for i, row in enumerate(table)]
    if fmt == "json":
        import json

        return json.dumps({"metric": metric, "runs": records}, indent=2)
    if fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*header, "best"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue().rstrip("\n")
    lines = ["| " + " | ".join([*header, "best"]) + " |", "|" + "---|" * (len(header) + 1)]
    for record in records:
        cells = [str(record[h]).replace("|", "\\|") for h in header] + ["yes" if record["best"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(value):
    """A param that is a long float (a tuned learning rate) shown with 4 significant digits."""
    try:
        return f"{float(value):.4g}" if "." in value and len(value) > 6 else value
    except ValueError:
        return value


def _short_param(name):
    return name[len("model.") :] if name.startswith("model.") else name


def _clip(value, keep_end=False):
    value = str(value)
    if len(value) <= _MAX_VALUE:
        return value
    return "..." + value[-(_MAX_VALUE - 3) :] if keep_end else value[: _MAX_VALUE - 3] + "..."


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
