"""`zoo tune RECIPE`: search a recipe's hyperparameters; every trial is a nested MLflow run.

    zoo tune cnn --trials 20
    zoo tune mlp --trials 30 --space learning_rate=log:1e-4..1e-2 --space hidden_units=int:16..256
    zoo tune mlp --trials 10 --study tabular --storage sqlite:///optuna.db --epochs 30

Without --space, the model card's default space is searched (`zoo info MODEL` shows it). The same
command with the same --study and --storage continues a study, also from several processes at once.
The recipe's own options (`zoo train RECIPE --help`) apply to every trial.
"""

import argparse


def add_parser(commands):
    from zoo import cli, training

    tune = commands.add_parser(
        "tune",
        help="search a recipe's hyperparameters (Optuna); each trial a nested MLflow run",
        description=__doc__.split("\n\n")[0],
    )
    tune.set_defaults(handler=_tune)
    recipes = tune.add_subparsers(dest="recipe", metavar="RECIPE", parser_class=cli._Parser)
    recipes.required = True
    for name in training.recipe_names():
        cli._add_recipe_parser(recipes, training.get_recipe(name))
        sub = recipes.choices[name]
        sub.description = f"Search the hyperparameters of `zoo train {name}`. {sub.description or ''}"
        _add_tune_options(sub)
        sub.set_defaults(handler=_tune)


def _add_tune_options(parser):
    group = parser.add_argument_group("search (zoo tune)")
    group.add_argument(
        "--trials", type=int, metavar="N", help="trials this command runs (each process, when several share a study)"
    )
    group.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="KEY=SPEC",
        help="a searched key: LOW..HIGH, log:LOW..HIGH, int:LOW..HIGH, intlog:LOW..HIGH or choice:A|B "
        "(repeatable; default: the model card's space, see `zoo info MODEL`)",
    )
    group.add_argument(
        "--metric",
        dest="tune_metric",
        metavar="NAME",
        help="per-epoch metric to optimize (default: the main validation metric)",
    )
    group.add_argument("--direction", choices=("min", "max"), help="default: from the metric (losses min, else max)")
    group.add_argument("--study", metavar="NAME", help="study name; an existing study in --storage is continued")
    group.add_argument("--storage", metavar="URL", help="Optuna database URL (default: sqlite:///optuna.db)")
    group.add_argument("--timeout", type=float, metavar="SECONDS", help="start no trial after this many seconds")
    group.add_argument(
        "--pruner", choices=("median", "halving", "none"), default="median", help="stop poor trials early"
    )
    group.add_argument("--sampler-seed", type=int, metavar="SEED", help="seed of the TPE sampler (default: random)")


_TUNE_KEYS = {
    "trials",
    "space",
    "tune_metric",
    "direction",
    "study",
    "storage",
    "timeout",
    "pruner",
    "sampler_seed",
    "command",
    "recipe",
    "settings",
    "handler",
}


def _tune(args):
    from zoo import cli, faults, tuning

    options = {k: v for k, v in vars(args).items() if k not in _TUNE_KEYS and v is not argparse.SUPPRESS}
    settings = cli.parse_settings(args.settings)
    try:
        result = tuning.tune(
            args.recipe,
            args.trials,
            space=args.space or None,
            metric=args.tune_metric,
            direction=args.direction,
            study=args.study,
            storage=args.storage,
            timeout=args.timeout,
            pruner=args.pruner,
            sampler_seed=args.sampler_seed,
            options=options,
            settings=settings,
            verbose=0,
        )
    except faults.Interrupted as interruption:
        interruption.run_id = None  # the trial's run is not for `zoo train --resume`: tune re-runs it
        print(
            f"zoo: interrupted by {interruption}; the trial and the study's run are KILLED. Run the same "
            "command with the same --study and --storage to continue (the interrupted trial runs again).",
            flush=True,
        )
        raise
    print(format_result(result))
    return 0


def format_result(result):
    """The summary `zoo tune` prints."""
    from zoo.tracking import database

    storage = database.safe_url(result.storage)  # a password in a URL stays off the terminal and logs
    params = ", ".join(f"{k}={_short(v)}" for k, v in result.best_params.items())
    tests = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.test_metrics.items()))
    states = ", ".join(f"{count} {state.lower()}" for state, count in sorted(result.states.items()) if count)
    lines = [
        f"study {result.study} ({storage}): {result.new_trials} new trials; {states}; {result.epochs} epochs",
        f"best trial {result.best_trial}: {result.metric}={result.best_value:.4g} with {params}",
        f"  trial run {result.best_run_id}; study run {result.parent_run_id}",
    ]
    if result.final_run_id:
        lines.append(f"best configuration trained again and tested: run {result.final_run_id}: {tests}")
    elif tests:
        lines.append(f"best configuration tested earlier: {tests}")
    if result.best_config:
        lines.append(f"best configuration: {result.best_config} (zoo train --config {result.best_config})")
    lines.append(f"continue: the same command with --study {result.study} --storage {storage}")
    return "\n".join(lines)


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)
