"""Run every benchmark and write the results table, `benchmarks/RESULTS.md`, with the machine it ran on.

One command, every figure measured on the spot (none typed in):

- `recipes`: each recipe's default run, `zoo train RECIPE` with no arguments, in a subprocess of
  its own in a fresh folder (so on a fresh default MLflow store): its test metrics, epochs, training
  time, wall time, CPU time and peak resident memory (the child's `ru_maxrss`); then
  `zoo train RECIPE --dataset NAME` for the tensorflow-datasets data prepared on disk (MNIST,
  Fashion-MNIST, CIFAR-10, IMDB; `TFDS_RUNS`), which lengthens the run by their training time.
  The GAN's quality score and the recurrent recipes' many-to-one figures are those runs' test
  metrics.
- `first_result`: time to first result, from `zoo train cnn` started to its MLflow run FINISHED
  (the run's end time in the store), default settings, taken from the `cnn` run of `recipes`.
- `quickstart`: the course's Keras quickstart, `zoo train cnn --model mlp_image --epochs 5`, on
  MNIST when tensorflow-datasets has it locally, on the digits otherwise.
- `overhead`: `benchmarks/overhead.py`: zoo recipe over hand-written Keras, MLP and CNN.
- `course_baseline`: `benchmarks/course_baseline.py`: the course's NumPy network against the zoo MLP.
- `recurrent`: `benchmarks/recurrent.py` for the modes other than the default many-to-one.
- `rbm`: `benchmarks/rbm_vs_sklearn.py`, the RBM against scikit-learn's `BernoulliRBM`.
- `mlflow_overhead`: `benchmarks/mlflow_overhead.py`, MLflow logging against none.

Every benchmark runs in a subprocess in a temporary folder; the only file written in the
repository is the table (`--output`). A section that fails shows its error in the table, the others
still run, and the exit status is 1.

    python benchmarks/run_all.py                                  # everything, writes benchmarks/RESULTS.md
    python benchmarks/run_all.py --only recipes,overhead --output /tmp/RESULTS.md
    python benchmarks/run_all.py --only course_baseline --quick --output /tmp/RESULTS.md
    python benchmarks/run_all.py --json figures.json             # also keep every figure
    python benchmarks/run_all.py --from-json figures.json        # the tables again, measuring nothing
    python benchmarks/run_all.py --only others --scripts backends.py --output /tmp/RESULTS.md
    python benchmarks/run_all.py --only others --scripts backends.py --update figures.json
                                 # measure one script again, keep every other figure of figures.json

With `--update`, the tables say which figures a later run re-measured, with its command, date and commit.
"""

import argparse
import datetime
import glob
import importlib.metadata
import json
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SECTIONS = (
    "recipes",
    "first_result",
    "gan_quality",
    "quickstart",
    "overhead",
    "course_baseline",
    "recurrent",
    "rbm",
    "mlflow_overhead",
    "others",
)
# Scripts with a section of their own, or whose figures the default recipe runs already give
# (cnn_digits.py and gan_digits.py run exactly `zoo train cnn` and `zoo train gan`).
COVERED = {
    "run_all.py",
    "overhead.py",
    "course_baseline.py",
    "recurrent.py",
    "rbm_vs_sklearn.py",
    "mlflow_overhead.py",
    "cnn_digits.py",
    "gan_digits.py",
    # Not a benchmark: the pass/fail helper the scripts import.
    "gate.py",
    # Not a benchmark: the line-image generator outside_data.py imports.
    "outside_lines.py",
}
# Sections that only read what another section measured.
NEEDS = {"first_result": "recipes", "gan_quality": "recipes"}
# The targets the issues set (not measured figures): shown beside what was measured.
GAN_TARGETS = {"test_confident_share": 0.80, "test_class_entropy": 0.95 * math.log(10)}
RECURRENT_TARGET = 0.97  # many-to-one row-sequence digits
# What each recipe's default run on its default data must reach: (test metric, at least).
RECIPE_TARGETS = {
    "cnn": ("test_accuracy", 0.98),
    "mlp": ("test_accuracy", 0.95),
    "rnn": ("test_accuracy", RECURRENT_TARGET),
    "lstm": ("test_accuracy", RECURRENT_TARGET),
    "gru": ("test_accuracy", RECURRENT_TARGET),
    "rbm": ("test_pseudo_likelihood", -17.0),
    "gan": ("test_confident_share", GAN_TARGETS["test_confident_share"]),
}
TIMEOUT = 1200  # seconds, per subprocess: a hung benchmark must not hang the runner
# Scripts whose full run lasts longer than TIMEOUT on 2 cores (15 runs of backends.py, 10 million rows
# of streaming.py), with room for a machine that other jobs share.
LONG_SCRIPTS = {"backends.py": 3600, "streaming.py": 3600, "tune.py": 2400, "outside_data.py": 7200}
TAIL = 15  # lines of a script's output kept in the table when its figures cannot be parsed
README = os.path.join(REPO, "README.md")
# README.md holds the summary table between these two lines; the runner rewrites what is between.
README_START = "<!-- benchmark summary: written by benchmarks/run_all.py -->"
README_END = "<!-- end of benchmark summary -->"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections (default: all): {', '.join(SECTIONS)}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 epoch per recipe, the scripts' --quick; scripts without one are skipped",
    )
    parser.add_argument("--recipes", help="comma-separated recipes for the recipes section (default: all registered)")
    parser.add_argument(
        "--scripts", help="comma-separated scripts the others section runs (default: every one not covered)"
    )
    parser.add_argument("--output", default=os.path.join(HERE, "RESULTS.md"), help="Markdown file to write")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="measure nothing: write the tables again from the figures a run saved with --json",
    )
    parser.add_argument(
        "--update",
        metavar="PATH",
        help="measure only the chosen sections or scripts, put their figures in place of those in PATH "
        "(saved by a full run with --json), write PATH back and the tables from the whole",
    )
    parser.add_argument(
        "--readme",
        metavar="PATH",
        help="Markdown file whose benchmark block gets the summary table (default: the "
        "repository's README.md, on a full run written to the default --output)",
    )
    args = parser.parse_args(argv)
    if (
        args.readme is None
        and (args.update or (not args.only and not args.scripts))
        and not args.quick
        and args.output == parser.get_default("output")
    ):
        args.readme = README
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    for name in list(chosen):
        if name in NEEDS and NEEDS[name] not in chosen:
            chosen.insert(chosen.index(name), NEEDS[name])
    if args.from_json:
        with open(args.from_json) as handle:
            results = json.load(handle)
        write_tables(results, args)
        return 0

    if args.update:
        with open(args.update) as handle:
            earlier = json.load(handle)
    started = time.perf_counter()
    results = {"machine": machine(), "quick": args.quick, "sections": {}}
    work = tempfile.mkdtemp(prefix="zoo-benchmarks-")
    try:
        for name in (s for s in SECTIONS if s in chosen):
            print(f"== {name}", flush=True)
            section_started = time.perf_counter()
            try:
                figures = RUNNERS[name](args, work, results["sections"])
            except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others
                figures = {"error": f"{type(error).__name__}: {error}"}
            figures["section_seconds"] = time.perf_counter() - section_started
            results["sections"][name] = figures
            print(
                f"== {name}: {figures['section_seconds']:.0f} s"
                + (f", FAILED: {figures['error']}" if "error" in figures else ""),
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    results["total_cpu_seconds"] = children.ru_utime + children.ru_stime
    results["machine"]["load_average_end"] = _load_average()
    results["command"] = "python benchmarks/run_all.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    if args.update:
        results = merge_update(earlier, results)
        with open(args.update, "w") as handle:
            json.dump(results, handle, indent=2, default=str)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, default=str)
    write_tables(results, args)
    print(f"wrote {args.output}; measured in {(time.perf_counter() - started) / 60:.1f} min")
    missed = missed_targets(results)
    for line in missed:
        print(f"target missed: {line}")
    if missed and args.quick:
        print("(--quick: smoke figures, targets reported but not enforced)")
    failed = any("error" in s for s in results["sections"].values())
    return 1 if failed or (missed and not args.quick) else 0


def merge_update(earlier, update):
    """The figures of `earlier` (a saved run), with those `update` measured in their place.

    A script of the `others` section replaces that script only; any other section replaces the whole
    section. `earlier["updates"]` lists each update: its command, date, commit, load and what it replaced.
    """
    merged = json.loads(json.dumps(earlier))
    replaced = []
    for name, figures in update["sections"].items():
        if name == "others" and "others" in merged["sections"]:
            scripts = figures.get("scripts", {})
            merged["sections"]["others"].setdefault("scripts", {}).update(scripts)
            replaced += sorted(scripts)
        else:
            merged["sections"][name] = figures
            replaced.append(name)
    m = update["machine"]
    merged.setdefault("updates", []).append(
        {
            "command": update["command"],
            "date": m["date"],
            "commit": m["commit"],
            "uncommitted": m["uncommitted"],
            "load_average": [m["load_average_start"], m.get("load_average_end")],
            "minutes": update["total_seconds"] / 60,
            "replaced": replaced,
        }
    )
    return merged


def _updates(results):
    """One sentence per later run that re-measured part of these figures (`--update`)."""
    return [
        f"Then `{u['command']}` measured {', '.join(u['replaced'])} again on {u['date']} (commit "
        f"{u['commit'] or 'unknown'}{_uncommitted(u['uncommitted'])}, load average "
        f"{_join((u['load_average'][0] or [])[:1])} at the start), in {u['minutes']:.1f} minutes: "
        "those figures are from that run."
        for u in results.get("updates", [])
    ]


def missed_targets(results):
    """The targets the measured figures miss, one line each (empty when every target is met).

    A recipe's default run is judged by `RECIPE_TARGETS`; a benchmark script by its own exit
    status (1: it ran and missed a target it states, see `benchmarks/gate.py`).
    """
    missed = []
    for name, row in results["sections"].get("recipes", {}).get("recipes", {}).items():
        if name not in RECIPE_TARGETS or "metrics" not in row:
            continue  # tfds runs (`cnn --dataset mnist`) have no target; a failed run is an error
        metric, target = RECIPE_TARGETS[name]
        value = row["metrics"].get(metric)
        if value is None or value < target:
            missed.append(f"zoo train {name}: {metric} {value} < {target}")
    # The `others` section runs several scripts; each is judged like a section of its own.
    scripts = results["sections"].get("others", {}).get("scripts", {})
    for name, section in [*results["sections"].items(), *scripts.items()]:
        if section.get("returncode") == 1 and "figures" in section:
            missed.append(f"{section.get('command', name)} exited 1 (a target missed)")
    return missed


def write_tables(results, args):
    with open(args.output, "w") as handle:
        handle.write(render(results))
    if args.readme:
        update_readme(args.readme, results, args.output)


# === The machine ===


def machine():
    """CPU, cores, memory, OS and library versions, read from the system (no TensorFlow import)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) / 1024**2  # kB to GiB
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {}
    for package in ("tensorflow", "keras", "mlflow", "tensorflow-datasets", "numpy", "scikit-learn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted": [line[3:] for line in _git("status", "--porcelain", "--", ".").splitlines() if line.strip()],
        "load_average_start": _load_average(),
    }


def _git(*args):
    try:
        result = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.rstrip() if result.returncode == 0 else ""


def _load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# === Subprocesses, measured ===


def measure(command, cwd, timeout=TIMEOUT, env=None):
    """Run `command` in `cwd`; return its exit code, output, wall and CPU time and peak memory.

    The peak resident memory is the child's own `ru_maxrss` from `wait4`, not the runner's.
    """
    environment = dict(os.environ if env is None else env)
    # The benchmark's defaults, not the caller's: stores and checkpoints stay in `cwd`.
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_NAME",
        "ZOO_CHECKPOINT_DIR",
        "ZOO_LOGICAL_CPUS",
    ):
        environment.pop(name, None)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    environment["PYTHONWARNINGS"] = "ignore"
    # Temporary folders a benchmark forgets to remove go with the runner's own.
    environment["TMPDIR"] = cwd
    out_path, err_path = os.path.join(cwd, ".stdout"), os.path.join(cwd, ".stderr")
    launched = time.time()
    started = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=out, stderr=err, start_new_session=True)
        timer = threading.Timer(timeout, lambda: os.killpg(process.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path) as out, open(err_path) as err:
        stdout, stderr = out.read(), err.read()
    os.remove(out_path)
    os.remove(err_path)
    return {
        "command": command,
        "returncode": process.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "launched": launched,
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        # Linux reports kilobytes (macOS bytes).
        "peak_rss_mb": usage.ru_maxrss / (1024**2 if sys.platform == "darwin" else 1024),
        "timed_out": wall >= timeout,
    }


def _failure(run):
    """One line saying why a subprocess failed: its last line of stderr (or stdout)."""
    lines = [
        line
        for line in (run["stderr"] + "\n" + run["stdout"]).splitlines()
        if line.strip() and "warn" not in line.lower()
    ]
    why = "timed out" if run["timed_out"] else f"exit {run['returncode']}"
    return f"{why}: {lines[-1].strip()[:300] if lines else 'no output'}"


def _zoo():
    """The `zoo` command as a user types it: the console script beside this Python."""
    script = os.path.join(os.path.dirname(sys.executable), "zoo")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "zoo"]


def _script(name, *args):
    return [sys.executable, os.path.join(HERE, name), *args]


def _fresh(work, name):
    folder = tempfile.mkdtemp(prefix=f"{name}-", dir=work)
    return folder


def _run_record(folder, run):
    """The single MLflow run a `zoo train` subprocess left in `folder`'s default store."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{os.path.join(folder, 'mlflow.db')}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise RuntimeError(f"no MLflow run found; {_failure(run)}")
    record = runs[0]
    return {
        "run_id": record.info.run_id,
        "status": record.info.status,
        "start_time": record.info.start_time / 1000,
        "end_time": (record.info.end_time or 0) / 1000,
        "metrics": dict(record.data.metrics),
        "params": dict(record.data.params),
        "tags": dict(record.data.tags),
    }


def train_default(work, recipe, args=(), quick=False):
    """`zoo train RECIPE ARGS` in a fresh folder: measurements plus what its MLflow run holds."""
    folder = _fresh(work, recipe)
    command = [*_zoo(), "train", recipe, *args] + (["--epochs", "1"] if quick else [])
    print("   " + " ".join(["zoo", *command[len(_zoo()) :]]), flush=True)
    run = measure(command, folder)
    figures = {key: run[key] for key in ("returncode", "wall_seconds", "cpu_seconds", "peak_rss_mb")}
    figures["command"] = " ".join(["zoo", *command[len(_zoo()) :]])
    if run["returncode"] != 0:
        figures["error"] = _failure(run)
        return figures
    record = _run_record(folder, run)
    figures.update(record)
    # Time to first result: from the command started to the run's FINISHED time in the store.
    figures["first_result_seconds"] = record["end_time"] - run["launched"] if record["end_time"] else None
    print(f"   {record['status']}, wall {run['wall_seconds']:.0f} s, peak RSS {run['peak_rss_mb']:.0f} MB", flush=True)
    return figures


# === Sections ===


def section_recipes(args, work, done):
    from zoo import tracking, training

    rows = {}
    names = training.recipe_names()
    if args.recipes:
        unknown = [name for name in args.recipes.split(",") if name not in names]
        if unknown:
            raise ValueError(f"unknown recipe(s) {', '.join(unknown)}; registered: {', '.join(names)}")
        names = args.recipes.split(",")
    root = tfds_root()
    on_disk = tfds_runs(names, root)
    runs = [(name, []) for name in names] + [(name, ["--dataset", dataset]) for name, dataset in on_disk]
    for name, extra in runs:
        row = train_default(work, name, extra, quick=args.quick)
        recipe = training.get_recipe(name)
        if "metrics" in row:
            row["main_metric"] = tracking.main_metric(
                {k: v for k, v in row["metrics"].items() if k.startswith("test_")}, recipe.ranking_metric()
            )
        rows[" ".join([name, *extra])] = row
    return {"recipes": rows, "tfds_root": root, "tfds_found": sorted({dataset for _, dataset in on_disk})}


# The larger datasets each recipe trains on from tensorflow-datasets, run with the recipe's
# defaults when their data are prepared on disk (never downloaded).
TFDS_RUNS = (
    ("cnn", "mnist"),
    ("cnn", "fashion_mnist"),
    ("cnn", "cifar10"),
    ("lstm", "mnist"),
    ("lstm", "imdb_reviews"),
    ("gan", "mnist"),
    ("rbm", "mnist"),
)


def tfds_root():
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def tfds_available(dataset, root):
    """Whether tensorflow-datasets has `dataset` prepared under `root` (checked on disk, no import)."""
    return bool(
        glob.glob(os.path.join(root, dataset, "*", "dataset_info.json"))
        or glob.glob(os.path.join(root, dataset, "*", "*", "dataset_info.json"))
    )


def tfds_runs(recipes, root):
    """The (recipe, dataset) pairs of `TFDS_RUNS` whose recipe is chosen and whose data are on disk."""
    return [(name, dataset) for name, dataset in TFDS_RUNS if name in recipes and tfds_available(dataset, root)]


def _default_run(done, recipe):
    """The `recipes` section's run of `recipe`, for the sections that read their figures from it."""
    run = done.get("recipes", {}).get("recipes", {}).get(recipe)
    if not run:
        raise RuntimeError(f"no {recipe} recipe run to read it from")
    if "error" in run:
        raise RuntimeError(f"the {recipe} run failed: {run['error']}")
    return run


def section_first_result(args, work, done):
    cnn = _default_run(done, "cnn")
    return {key: cnn.get(key) for key in ("first_result_seconds", "wall_seconds", "status", "command")} | {
        "train_seconds": cnn["metrics"].get("train_seconds"),
        "epochs": cnn["metrics"].get("epochs_trained"),
    }


def section_gan_quality(args, work, done):
    gan = _default_run(done, "gan")
    return {
        "metrics": {k: v for k, v in gan["metrics"].items() if k.startswith("test_") or k.startswith("judge_")},
        "command": gan["command"],
        "epochs": gan["metrics"].get("epochs_trained"),
    }


def section_quickstart(args, work, done):
    base = ["--model", "mlp_image", "--epochs", "5"]
    notes = []
    if tfds_available("mnist", tfds_root()):
        row = train_default(work, "cnn", [*base, "--dataset", "mnist"])
        if "error" not in row:
            return {"run": row, "dataset": "mnist", "notes": notes}
        notes.append(f"MNIST is in the tfds data directory but its run failed ({row['error']}); digits instead.")
    else:
        notes.append("MNIST is not in the tensorflow-datasets data directory (no download here): digits instead.")
    row = train_default(work, "cnn", base)
    if "error" in row:
        raise RuntimeError(row["error"])
    return {"run": row, "dataset": "digits", "notes": notes}


def _external(name, work, args=(), quick_args=None, quick=False):
    """Run `benchmarks/NAME` in a fresh folder and collect its figures.

    A script with a `--json PATH` option hands its figures over as JSON; for one without, the
    table shows the last lines it printed. With `quick`, a script runs with `quick_args`, or not at
    all when it has none.
    """
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        return {"skipped": f"benchmarks/{name} does not exist yet"}
    if quick and quick_args is None:
        return {"skipped": f"benchmarks/{name} has no quick mode; left out of --quick"}
    args = [*args, *(quick_args if quick else [])]
    with open(path) as handle:
        has_json = '"--json"' in handle.read()
    folder = _fresh(work, name)
    figures_path = os.path.join(folder, "figures.json")
    shown = shlex.join(["python", f"benchmarks/{name}", *args])
    print(f"   {shown}", flush=True)
    run = measure(
        _script(name, *args, *(["--json", figures_path] if has_json else [])),
        folder,
        timeout=LONG_SCRIPTS.get(name, TIMEOUT),
    )
    result = {
        "command": shown,
        "returncode": run["returncode"],
        "wall_seconds": run["wall_seconds"],
        "cpu_seconds": run["cpu_seconds"],
        "peak_rss_mb": run["peak_rss_mb"],
        "stdout": run["stdout"],
    }
    # Exit 1 with figures: the script ran and reports a missed target (the scripts' convention).
    if has_json and os.path.exists(figures_path) and run["returncode"] in (0, 1):
        with open(figures_path) as handle:
            result["figures"] = json.load(handle)
    elif run["returncode"] != 0 or has_json:
        result["error"] = _failure(run)
    return result


# The steps of overhead.py that locate the cost; +guards, left out, adds little to what these show.
# Five rounds: an epoch of either recipe lasts well under a second, and one disturbed epoch in
# three rounds moved the ratio by several percent.
OVERHEAD_VARIANTS = "keras,keras+pipeline,+checkpoints,zoo"
OVERHEAD_ROUNDS = "5"


def section_overhead(args, work, done):
    return _external(
        "overhead.py",
        work,
        ["--variants", OVERHEAD_VARIANTS, "--rounds", OVERHEAD_ROUNDS],
        quick_args=["--quick"],
        quick=args.quick,
    )


def section_course_baseline(args, work, done):
    return _external("course_baseline.py", work, quick_args=["--quick"], quick=args.quick)


def section_recurrent(args, work, done):
    # many_to_one is each recurrent recipe's default: `recipes` measured it already.
    return _external("recurrent.py", work, ["--modes", "many_to_many,one_to_many"], quick=args.quick)


def section_rbm(args, work, done):
    return _external("rbm_vs_sklearn.py", work, quick=args.quick)


def section_mlflow_overhead(args, work, done):
    # 3 pairs rather than the script's 5: the runner's time budget.
    return _external(
        "mlflow_overhead.py", work, ["--pairs", "3"], quick_args=["--epochs", "2", "--pairs", "1"], quick=args.quick
    )


# The sizes the runner gives the scripts of `others`: (arguments, --quick arguments). A script's own
# defaults are its full benchmark (ocr.py: 3 seeds and a line-length run; tune.py: 20 and 30 trials,
# about an hour of searching on 2 cores); here each is cut to fit one runner pass of under an hour,
# and the table prints the command it ran. A script not listed runs with its defaults and is left
# out of --quick.
OTHERS_ARGS = {
    "ocr.py": (["--seeds", "42", "--no-lengths"], ["--epochs", "2"]),
    "forecast.py": (["--seeds", "42"], ["--cells", "gru", "--horizons", "1", "--epochs", "5"]),
    # Seven series, lstm and gru: about 15 minutes on 2 cores.
    "forecast_series.py": ([], ["--series", "nile", "--cells", "gru", "--epochs", "3"]),
    "serving.py": (["--repeats", "30"], ["--quick"]),
    "first_line.py": ([], ["--quick"]),
    "tune.py": (
        # 30 trials: with 10 the median pruner had too few finished trials to prune any (0 % saved).
        ["--recipes", "mlp", "--trials", "30", "--epochs", "40"],
        ["--recipes", "mlp", "--trials", "3", "--epochs", "2", "--no-unpruned"],
    ),
    "devices_and_resume.py": ([], ["--epochs", "5"]),
    "finetune.py": ([], ["--quick"]),
    # 16 datasets, each trained with its recipe's full default budget (about two hours on 2 cores).
    "outside_data.py": ([], ["--quick"]),
    # CPU figures only where JAX sees no GPU (the script says so and checks no target).
    "gpu.py": (["--epochs", "3"], ["--recipes", "cnn", "--epochs", "2"]),
    # One recipe per technique on each backend (every recipe on three backends takes about an hour).
    "backends.py": (
        ["--recipes", "mlp,cnn,lstm,gan,rbm", "--epochs", "3"],
        ["--recipes", "mlp", "--epochs", "2", "--no-overhead"],
    ),
    # The README's table: 10 thousand to 10 million rows, 10,000 images (streamed and in memory) and
    # 50,000 (streamed only: 600 MB as float32 arrays); about 20 minutes.
    "streaming.py": (
        ["--rows", "10000,1000000,10000000", "--images", "10000,50000"],
        ["--rows", "10000", "--images", "500", "--in-memory-max", "0", "--in-memory-images-max", "0"],
    ),
}


def section_others(args, work, done):
    """Every other script in benchmarks/, so that a benchmark added later is run too."""
    scripts = sorted(os.path.basename(p) for p in glob.glob(os.path.join(HERE, "*.py")))
    results = {}
    for name in scripts:
        if name in COVERED or name.startswith("_") or (args.scripts and name not in args.scripts.split(",")):
            continue
        full, quick = OTHERS_ARGS.get(name, ([], None))
        results[name] = _external(name, work, full, quick_args=quick, quick=args.quick)
    return {"scripts": results}


RUNNERS = {
    "recipes": section_recipes,
    "first_result": section_first_result,
    "gan_quality": section_gan_quality,
    "quickstart": section_quickstart,
    "overhead": section_overhead,
    "course_baseline": section_course_baseline,
    "recurrent": section_recurrent,
    "rbm": section_rbm,
    "mlflow_overhead": section_mlflow_overhead,
    "others": section_others,
}


# === The Markdown ===


def render(results):
    m = results["machine"]
    versions = m["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured by `{results['command']}` on {m['date']}, in {results['total_seconds'] / 60:.1f} minutes"
        + (" (**--quick: smoke figures, not results**)" if results["quick"] else "")
        + ".",
        f"Every figure below was measured by that run (CPU time of all its processes: "
        f"{results.get('total_cpu_seconds', 0) / 60:.1f} minutes); rerun it to refresh this file.",
        *_updates(results),
        "",
        "| Machine | |",
        "| --- | --- |",
        f"| CPU | {m['cpu']} |",
        f"| Cores | {m['cores']} ({m['usable_cores']} usable by this process) |",
        f"| Memory | {m['memory_gib']:.1f} GiB |" if m["memory_gib"] else "| Memory | unknown |",
        f"| OS, Python | {m['os']}, Python {m['python']} |",
        f"| TensorFlow, Keras, MLflow | {versions['tensorflow']}, {versions['keras']}, {versions['mlflow']} |",
        f"| tensorflow-datasets, NumPy, scikit-learn | {versions['tensorflow-datasets']}, {versions['numpy']}, "
        f"{versions['scikit-learn']} |",
        f"| Code | commit {m['commit'] or 'unknown'}{_uncommitted(m['uncommitted'])} |",
        f"| Load average (1, 5, 15 min) | start {_join(m['load_average_start'])}; end "
        f"{_join(m.get('load_average_end'))} |",
        "",
        "A load average above the number of cores means other processes shared the CPU during the run: "
        "wall times stretch with it, ratios measured alternately in one process much less.",
        "",
        "## Summary",
        "",
        *render_summary(results),
        "",
    ]
    sections = results["sections"]
    for name in SECTIONS:
        if name in sections:
            section = sections[name]
            lines += RENDERERS[name](section, sections)
            if "error" in section and name != "recipes":
                lines += [f"**Failed:** {_cell(section['error'])}", ""]
            if name not in NEEDS:
                lines += [f"_Section time: {section['section_seconds']:.0f} s._", ""]
    return "\n".join(lines).rstrip() + "\n"


def _uncommitted(paths):
    if not paths:
        return ""
    shown = ", ".join(f"`{p}`" for p in paths[:5])
    return f", with uncommitted changes in {shown}" + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def _join(values):
    return ", ".join(f"{v:.2f}" for v in values) if values else "unknown"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value, digits=4):
    if value is None:
        return ""
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _dataset(params):
    return params.get("data.name") or params.get("dataset") or params.get("data.source") or ""


def render_recipes(section, sections):
    lines = [
        "## Each recipe in its default configuration",
        "",
        "`zoo train RECIPE` with no arguments, each in a fresh folder (a new default MLflow store), on its "
        "held-out test split. Peak RSS: the process's peak resident memory.",
        "",
        "| Recipe | Model | Dataset | Main test metric | Other test metrics | Epochs | Train s | Wall s "
        "| CPU s | Peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in section.get("recipes", {}).items():
        if "error" in row:
            lines.append(
                f"| `{name}` | | | failed: {_cell(row['error'])} | | | | {row['wall_seconds']:.0f} | "
                f"{row['cpu_seconds']:.0f} | {row['peak_rss_mb']:.0f} |"
            )
            continue
        metrics = row["metrics"]
        main = row.get("main_metric")
        others = ", ".join(
            f"{k[5:]} {_number(v)}" for k, v in sorted(metrics.items()) if k.startswith("test_") and k != main
        )
        lines.append(
            f"| `{name}` | {row['tags'].get('zoo.model', '')} | {_dataset(row['params'])} | "
            f"{main[5:] if main else ''} **{_number(metrics.get(main))}** | {_cell(others)} | "
            f"{int(metrics.get('epochs_trained', 0))} | {metrics.get('train_seconds', 0):.0f} | "
            f"{row['wall_seconds']:.0f} | {row['cpu_seconds']:.0f} | {row['peak_rss_mb']:.0f} |"
        )
    if "tfds_root" in section:
        found, missing = section["tfds_found"], sorted({d for _, d in TFDS_RUNS} - set(section["tfds_found"]))
        lines += [
            "",
            (f"From tensorflow-datasets in `{section['tfds_root']}`: {', '.join(found)}. " if found else "")
            + (f"Not on disk there (never downloaded), so not run: {', '.join(missing)}." if missing else ""),
        ]
    if "error" in section:
        lines.append(f"\n**Failed:** {_cell(section['error'])}")
    return lines + [""]


def render_first_result(section, sections):
    if "error" in section:
        return ["## Time to first result", ""]
    return [
        "## Time to first result",
        "",
        f"From `{section['command']}` started to its MLflow run {section['status']} in the store: "
        f"**{section['first_result_seconds']:.0f} s** (default settings, a new store; training "
        f"{section['train_seconds']:.0f} s over {int(section['epochs'])} epochs; the process exited after "
        f"{section['wall_seconds']:.0f} s).",
        "",
    ]


def render_gan_quality(section, sections):
    lines = ["## GAN quality score", ""]
    if "metrics" not in section:
        return lines
    m = section["metrics"]
    confident, entropy = m.get("test_confident_share"), m.get("test_class_entropy")
    lines.append(
        f"From the default `{section['command']}` run ({section['epochs']:.0f} epochs), on samples generated "
        "after training, judged by a zoo classifier trained on the real digits"
        + (f" (its test accuracy {m['judge_test_accuracy']:.4f})" if "judge_test_accuracy" in m else "")
        + ":"
    )
    lines.append("")
    rows = [
        ("share labelled with confidence >= 0.9", confident, "test_confident_share"),
        ("entropy of the predicted-class histogram", entropy, "test_class_entropy"),
        ("Frechet distance to the test digits (classifier features)", m.get("test_frechet_distance"), None),
        ("label accuracy of the conditional samples", m.get("test_label_accuracy"), None),
    ]
    lines += ["| Figure | Value | Target |", "| --- | --- | --- |"]
    for text, value, key in rows:
        if value is None:
            continue
        target = GAN_TARGETS.get(key)
        verdict = "" if target is None else f">= {target:.3f} {'met' if value >= target else 'MISSED'}"
        lines.append(f"| {text} | **{value:.4g}** | {verdict} |")
    return lines + [""]


def render_quickstart(section, sections):
    lines = [
        "## The course's Keras quickstart",
        "",
        "Flatten, Dense 128 relu, Dropout 0.2, Dense 10, Adam, 5 epochs (the course quotes about 98% on "
        "MNIST), reproduced by the zoo's `mlp_image` model.",
        "",
    ]
    if "error" in section:
        return lines
    run = section["run"]
    metrics = run["metrics"]
    lines += [
        "| Command | Dataset | Test accuracy | Epochs | Train s | Wall s | Peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| `{run['command']}` | {section['dataset']} | **{_number(metrics.get('test_accuracy'))}** | "
        f"{int(metrics.get('epochs_trained', 0))} | {metrics.get('train_seconds', 0):.0f} | "
        f"{run['wall_seconds']:.0f} | {run['peak_rss_mb']:.0f} |",
        "",
    ]
    return lines + [f"{note}" for note in section.get("notes", [])] + [""]


def render_overhead(section, sections):
    lines = [
        "## What the zoo costs over hand-written Keras",
        "",
        f"`{section.get('command', 'python benchmarks/overhead.py')}`: training throughput of the zoo recipe "
        "(engine, callbacks, per-epoch checkpoints, MLflow logging, and the wait for the last metrics to be "
        "written) against a hand-written `model.fit(x, y, batch_size=..., validation_data=...)` of the same "
        "compiled model on the same NumPy arrays, alternated in one process. Throughput: training examples "
        "per second of the median epoch (validation and callbacks included, the first epoch's graph tracing "
        "left out). Ratio: the median over rounds of zoo/Keras within a round; in wall time (the target, "
        ">= 0.97), in CPU time (what a shared machine disturbs least), and over the whole `fit`.",
        "",
    ]
    if "figures" not in section:
        return lines + _not_run(section)
    figures = section["figures"]
    recipes = figures["recipes"]
    lines += [
        "| Recipe | Epochs x examples, batch | Keras examples/s | Zoo examples/s | **Zoo/Keras** | "
        "Zoo/Keras CPU | Zoo/Keras whole fit | Keras epoch ms (CPU ms) | Zoo checkpoint ms/epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in recipes.items():
        eps = r["examples_per_second"]
        lines.append(
            f"| `{name}` | {r['epochs']} x {r['num_train']}, {r['batch_size']} | {eps['keras']:.0f} | "
            f"{eps['zoo']:.0f} | "
            f"**{r['ratio']:.3f}** {'met' if r['ratio'] >= figures['target'] else 'missed'} | {r['cpu_ratio']:.3f} | "
            f"{r['fit_ratio']:.3f} | {r['keras_epoch_ms']:.0f} ({r['keras_epoch_cpu_ms']:.0f}) | "
            f"{r['checkpoint_ms_per_epoch']:.1f} |"
        )
    steps = [v for v in figures["variants"] if v != "keras"]
    if len(steps) > 1:
        meaning = {
            "keras+pipeline": "the engine's tf.data input (`training_batches`: cache, shuffle, `repeat()` "
            "with `steps_per_epoch`)",
            "+guards": "plus the NaN guard and early stopping",
            "+checkpoints": "plus the NaN guard, early stopping and the engine's per-epoch checkpoint "
            "(`faults.EpochCheckpoint`, every variable in one `.npz`)",
            "zoo": "the whole recipe, MLflow logging included",
        }
        lines += [
            "",
            "Where the difference comes from: each step's throughput over the hand-written script's, "
            "wall time (CPU time). " + "; ".join(f"`{v}`: {meaning[v]}" for v in steps if v in meaning) + ".",
            "",
            "| Recipe | " + " | ".join(steps) + " |",
            "| --- | " + "--- | " * len(steps),
        ]
        for name, r in recipes.items():
            lines.append(
                f"| `{name}` | "
                + " | ".join(f"{r['ratio_to_keras'][v]:.2f} ({r['cpu_ratio_to_keras'][v]:.2f})" for v in steps)
                + " |"
            )
    lines += [
        "",
        f"{figures['rounds']} rounds per recipe. Outside `fit`, a whole zoo run (data, params, datasets, "
        "learning curve, model logging) takes "
        + ", ".join(f"{name} {r['zoo_run_seconds'] - r['zoo_fit_seconds']:.1f} s" for name, r in recipes.items())
        + ".",
        "",
    ]
    return lines


def render_course_baseline(section, sections):
    lines = [
        "## The course's starting point: a NumPy network against the zoo's MLP",
        "",
        "`python benchmarks/course_baseline.py`: graduate admissions (`admissions.csv`, 400 rows), gre and "
        "gpa standardized, rank one-hot, 10% held out. The course's network: 2 sigmoid hidden units, "
        "a sigmoid output, NumPy with a per-example loop, one gradient step per epoch, learning rate "
        "0.005. The zoo's MLP: the same shape (`--set hidden_units=2 --set activation=sigmoid "
        "--set dropout=0`), its recipe's defaults otherwise (Adam, batch 32, early stopping).",
        "",
    ]
    if "figures" not in section:
        return lines + _not_run(section)
    f = section["figures"]
    numpy_run, course, zoo = f["numpy"], f["numpy_course_split"], f["zoo"]
    lines += [
        "| Model | Test rows | Test accuracy | Epochs | Training wall s | Whole run s |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| Course network, NumPy loop (zoo split) | {numpy_run['test_rows']} | **{numpy_run['test_accuracy']:.3f}** | "
        f"{numpy_run['epochs']} | {numpy_run['wall_seconds']:.1f} | |",
        f"| Zoo MLP `mlp` recipe (zoo split) | {numpy_run['test_rows']} | **{zoo['test_accuracy']:.3f}** | "
        f"{zoo['epochs']} | {zoo['train_seconds']:.1f} | {zoo['wall_seconds']:.1f} |",
        f"| Course network, NumPy loop (the course's own split) | {course['test_rows']} | "
        f"{course['test_accuracy']:.3f} | {course['epochs']} | {course['wall_seconds']:.1f} | |",
        "",
        f"Majority class on the zoo's test rows: {numpy_run['majority_test_accuracy']:.3f}; on the course's: "
        f"{course['majority_test_accuracy']:.3f}. The NumPy network's training MSE after {numpy_run['epochs']} "
        f"epochs: {numpy_run['train_mse']:.3f} (a constant output of 0.5 scores 0.25).",
        "",
    ]
    return lines


def render_recurrent(section, sections):
    lines = [
        "## Recurrent recipes in their three modes",
        "",
        "`python benchmarks/recurrent.py --modes many_to_many,one_to_many`; the default many-to-one runs are "
        "in the recipes table.",
        "",
    ]
    if "figures" not in section:
        return lines + _not_run(section)
    lines += [
        "| Recipe | Mode | Test metric | Value | Target | Epochs | Train s | Wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    defaults = sections.get("recipes", {}).get("recipes", {})
    for cell in ("rnn", "lstm", "gru"):
        run = defaults.get(cell)
        if run and "metrics" in run and "test_accuracy" in run["metrics"]:
            value = run["metrics"]["test_accuracy"]
            lines.append(
                f"| `{cell}` | many_to_one (default run above) | accuracy | **{value:.4f}** | "
                f">= {RECURRENT_TARGET} {'met' if value >= RECURRENT_TARGET else 'MISSED'} | "
                f"{int(run['metrics'].get('epochs_trained', 0))} | {run['metrics'].get('train_seconds', 0):.0f} "
                f"| {run['wall_seconds']:.0f} |"
            )
    for r in section["figures"]["runs"]:
        lines.append(
            f"| `{r['cell']}` | {r['mode']} | {r['metric'][5:]} | **{r['value']:.4f}** | {_cell(r['target'])} "
            f"{'met' if r['met'] else 'MISSED'} | {r['epochs']} | {r['train_seconds']:.0f} | "
            f"{r['wall_seconds']:.0f} |"
        )
    return lines + [""]


def render_rbm(section, sections):
    lines = ["## RBM against scikit-learn's BernoulliRBM", ""]
    if "figures" not in section:
        return lines + _not_run(section)
    f = section["figures"]
    lines += [
        f"`{section['command']}`: binarized digits, {f['hidden']} hidden units, learning rate "
        f"{f['learning_rate']}, {f['batch']} rows per update, {f['epochs']} passes, persistent CD in both. "
        "Pseudo-likelihood: scikit-learn's estimator on the training rows (higher is better); seconds: the best "
        "of the script's repeats.",
        "",
        "| Model | Seconds | x scikit-learn | Pseudo-likelihood | Seeds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in f["rows"]:
        spread = f" +- {row['pseudo_likelihood_sd']:.2f}" if row.get("pseudo_likelihood_sd") is not None else ""
        lines.append(
            f"| {row['label']} | {row['seconds']:.3f} | {row['x_sklearn']:.2f} | "
            f"{row['pseudo_likelihood']:.2f}{spread} | {row['seeds']} |"
        )
    return lines + [
        "",
        f"Targets (compiled, warm, against {f['baseline']}): pseudo-likelihood at least scikit-learn's "
        f"(within 2 standard errors, {f['margin']:.2f}): **{'met' if f['quality_met'] else 'missed'}**; "
        f"wall time at most 1.0x: **{'met' if f['speed_met'] else 'missed'}**.",
        "",
    ]


def render_mlflow_overhead(section, sections):
    lines = ["## MLflow logging against none", ""]
    if "figures" not in section:
        return lines + _not_run(section)
    f = section["figures"]
    return lines + [
        f"`{section['command']}`: the default MLP recipe's model, {f['epochs']} epochs on the engine's pipeline, "
        f"{f['pairs']} alternated pairs. Fit with per-epoch MLflow logging / without: **{f['ratio']:.4f}** (median "
        f"of pair ratios {f['pair_ratio']:.4f}; target <= 1.02). Direct cost, the time in the logging callback "
        f"({f['callback_ms']:.1f} ms) plus the final flush ({f['flush_ms']:.1f} ms): "
        f"**{f['direct_cost_percent']:.2f}%** "
        f"of the fit. A whole `training.train` run: {f['whole_run_seconds']:.1f} s for a "
        f"{f['whole_run_fit_seconds']:.1f} s fit.",
        "",
    ]


def render_others(section, sections):
    lines = []
    for name, result in section.get("scripts", {}).items():
        lines += [f"## {_title(name)}", ""]
        if "figures" in result:
            lines += [f"`{result['command']}` (wall {result['wall_seconds']:.0f} s), its figures:", ""]
            if name in SCRIPT_TABLES:
                lines += SCRIPT_TABLES[name](result["figures"], sections)
            lines += [
                "```json",
                json.dumps(result["figures"], indent=2, default=str),
                "```",
                "",
            ]
        elif "stdout" in result:
            lines += [f"`{result['command']}` (wall {result['wall_seconds']:.0f} s), as it prints:", ""] + _verbatim(
                result
            )
            if "error" in result:
                lines += [f"**Failed:** {_cell(result['error'])}", ""]
        else:
            lines += _not_run(result)
    return lines


def render_backends(figures, sections):
    """`backends.py`'s own table, and what a whole default run costs on each backend.

    A recipe's default run is its time to first result (imports, data, compiling, one epoch) plus
    its remaining epochs at the median epoch time, with the epoch count the `recipes` section's
    TensorFlow run of that default stopped at; the backend that finishes it first is the fastest
    for that default.
    """
    import backends

    names = [b for b in backends.BACKENDS if any(b in rows for rows in figures["runs"].values())]
    lines = [backends._table(figures, names), ""]
    defaults = sections.get("recipes", {}).get("recipes", {})
    header = "| default run, estimated (s) | epochs | " + " | ".join(names) + " | fastest |"
    rows = [header, "| --- " * (len(names) + 3) + "|"]
    for recipe, runs in figures["runs"].items():
        epochs = defaults.get(recipe, {}).get("metrics", {}).get("epochs_trained")
        if not epochs:
            continue
        seconds = {
            b: r["first_result_seconds"] + (epochs - 1) * r["epoch_seconds"]
            for b, r in runs.items()
            if r.get("epoch_seconds") and r.get("first_result_seconds")
        }
        if not seconds:
            continue
        cells = " | ".join(f"{seconds[b]:.0f} s" if b in seconds else "-" for b in names)
        rows.append(f"| `zoo train {recipe}` | {int(epochs)} | {cells} | {min(seconds, key=seconds.get)} |")
    if len(rows) > 2:
        lines += [
            "A whole default run, estimated as time to first result + (epochs - 1) x median epoch, with "
            "the epochs the default run of the recipes section took:",
            "",
            *rows,
            "",
        ]
    return lines


# Scripts whose figures read better as their own tables (above the JSON they come from).
SCRIPT_TABLES = {"backends.py": render_backends}


def _title(name):
    """The first line of a script's docstring, without importing it."""
    import ast

    try:
        with open(os.path.join(HERE, name)) as handle:
            doc = ast.get_docstring(ast.parse(handle.read())) or ""
    except (OSError, SyntaxError):
        doc = ""
    first = doc.strip().splitlines()[0] if doc.strip() else name
    return first.removeprefix("Benchmark: ").rstrip(".")


def _not_run(section):
    if "skipped" in section:
        return [section["skipped"] + ".", ""]
    if "stdout" in section:
        return _verbatim(section)
    return []


def _verbatim(section):
    """A script's last lines as printed, where the runner has no figures from it."""
    tail = [line for line in section.get("stdout", "").splitlines() if line.strip()][-TAIL:]
    return ["```", *tail, "```", ""] if tail else []


# === The summary: one line per benchmark, in RESULTS.md and in README.md ===


def render_summary(results):
    """The headline figure of each section that ran, with its target where an issue set one."""
    sections = results["sections"]
    rows = []

    def add(benchmark, measured, target=""):
        rows.append(f"| {benchmark} | {measured} | {target} |")

    def verdict(value, target, above=True):
        met = value >= target if above else value <= target
        return f"{'>=' if above else '<='} {target:g}: {'met' if met else '**missed**'}"

    for name, row in sections.get("recipes", {}).get("recipes", {}).items():
        if "error" in row:
            add(f"`zoo train {name}`", f"failed: {_cell(row['error'])}")
            continue
        metrics, main = row["metrics"], row.get("main_metric")
        add(
            f"`zoo train {name}` ({_dataset(row['params'])})",
            f"test {main[5:] if main else ''} **{_number(metrics.get(main))}**, "
            f"{int(metrics.get('epochs_trained', 0))} epochs, {row['wall_seconds']:.0f} s, "
            f"peak RSS {row['peak_rss_mb']:.0f} MB",
        )
    first = sections.get("first_result", {})
    if "first_result_seconds" in first:
        add(
            "Time to first result",
            f"**{first['first_result_seconds']:.0f} s** from `{first['command']}` to its run {first['status']}",
        )
    gan = sections.get("gan_quality", {}).get("metrics")
    if gan and "test_confident_share" in gan:
        add(
            "GAN samples judged by a digit classifier",
            f"confident share **{gan['test_confident_share']:.3f}**, class entropy **{gan['test_class_entropy']:.3f}**",
            f"{verdict(gan['test_confident_share'], GAN_TARGETS['test_confident_share'])}; "
            f"{verdict(gan['test_class_entropy'], round(GAN_TARGETS['test_class_entropy'], 3))}",
        )
    quick = sections.get("quickstart", {})
    if "run" in quick:
        add(
            "The course's Keras quickstart (`mlp_image`, 5 epochs)",
            f"test accuracy **{_number(quick['run']['metrics'].get('test_accuracy'))}** on {quick['dataset']}",
            "about 0.98 on MNIST (the course)",
        )
    overhead = sections.get("overhead", {}).get("figures")
    for name, r in (overhead or {}).get("recipes", {}).items():
        add(
            f"Zoo over hand-written Keras, `{name}` (examples/s)",
            f"**{r['ratio']:.3f}** (CPU time {r['cpu_ratio']:.3f}, whole fit {r['fit_ratio']:.3f})",
            verdict(r["ratio"], overhead["target"]),
        )
    course = sections.get("course_baseline", {}).get("figures")
    if course:
        numpy_run, zoo = course["numpy"], course["zoo"]
        add(
            "Course NumPy network vs zoo MLP (admissions)",
            f"test accuracy {numpy_run['test_accuracy']:.3f} in {numpy_run['wall_seconds']:.1f} s vs "
            f"**{zoo['test_accuracy']:.3f}** in {zoo['train_seconds']:.1f} s "
            f"(majority class {numpy_run['majority_test_accuracy']:.3f})",
        )
    recurrent = sections.get("recurrent", {}).get("figures")
    if recurrent:
        runs = recurrent["runs"]
        met = sum(r["met"] for r in runs)
        worst = min(runs, key=lambda r: r["value"]) if runs else None
        add(
            "Recurrent many-to-many and one-to-many runs",
            f"{met} of {len(runs)} meet their target"
            + (f"; lowest {worst['cell']} {worst['mode']} {worst['metric'][5:]} {worst['value']:.4f}" if worst else ""),
        )
    rbm = sections.get("rbm", {}).get("figures")
    if rbm and "headline" in rbm:
        h = rbm["headline"]
        add(
            "RBM vs scikit-learn `BernoulliRBM`",
            f"pseudo-likelihood **{h['pseudo_likelihood']:.2f}** vs {h['sklearn_pseudo_likelihood']:.2f}, "
            f"time **{h['x_sklearn']:.2f}x** ({h['label']})",
            f"quality {'met' if rbm['quality_met'] else '**missed**'}, time <= 1.0x "
            f"{'met' if rbm['speed_met'] else '**missed**'}",
        )
    mlflow_cost = sections.get("mlflow_overhead", {}).get("figures")
    if mlflow_cost:
        add("MLflow logging", f"**{mlflow_cost['direct_cost_percent']:.2f}%** of the fit spent logging")
    failed = [name for name, section in sections.items() if "error" in section]
    if failed:
        add("Failed sections", ", ".join(failed))
    return ["| Benchmark | Measured | Target |", "| --- | --- | --- |", *rows]


def update_readme(path, results, output):
    """Replace the summary block of the Markdown file at `path` with this run's summary."""
    with open(path) as handle:
        text = handle.read()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(
            f"{path} has no benchmark block; add the lines {README_START!r} and {README_END!r} "
            "where the summary belongs"
        )
    m = results["machine"]
    link = os.path.relpath(output, os.path.dirname(os.path.abspath(path)))
    block = [
        README_START,
        f"Measured by `{results['command']}` on {m['date']} ({m['cpu']}, {m['usable_cores']} cores, "
        f"load average {_join((m['load_average_start'] or [])[:1])} at the start; commit {m['commit'] or 'unknown'}"
        f"{_uncommitted(m['uncommitted'])}), in {results['total_seconds'] / 60:.1f} minutes. "
        f"Every table is in [{link}]({link}).",
        *_updates(results),
        "",
        *render_summary(results),
        "",
        README_END,
    ]
    with open(path, "w") as handle:
        handle.write(text[:start] + "\n".join(block) + text[end + len(README_END) :])


RENDERERS = {
    "recipes": render_recipes,
    "first_result": render_first_result,
    "gan_quality": render_gan_quality,
    "quickstart": render_quickstart,
    "overhead": render_overhead,
    "course_baseline": render_course_baseline,
    "recurrent": render_recurrent,
    "rbm": render_rbm,
    "mlflow_overhead": render_mlflow_overhead,
    "others": render_others,
}


if __name__ == "__main__":
    sys.exit(main())
