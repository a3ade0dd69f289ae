"""The `zoo` command: train recipes, browse the registry, open the MLflow UI.

Bad input ends with one line on stderr that names the problem and the fix, and exit status 2.
Library errors name Python parameters in backticks (`image_size`, `image_size=32,32`), as a
`zoo.train(...)` caller writes them; `as_flags` prints them as the options that set them here
(`--image-size`, `--image-size 32,32`, `--set units=64` for a model hyperparameter).
"""

import argparse
import contextlib
import dataclasses
import importlib
import logging
import os
import pkgutil
import re
import sys
import typing

from zoo.errors import ZooError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line `ZooError`s instead of usage dumps."""

    def error(self, message):
        raise ZooError(f"{message}. See '{self.prog} --help'.")


def build_parser():
    from zoo import training

    parser = _Parser(prog="zoo", description="A zoo of classic deep-learning techniques in Keras 3.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser("train", help="train a recipe and log the run to MLflow")
    train.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue an interrupted run from its last checkpoint, in the same MLflow run",
    )
    train.add_argument(
        "--tracking-uri", dest="resume_tracking_uri", metavar="URI", help="with --resume: the store that holds the run"
    )
    train.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        help="run the recipe and options of a YAML file (a run's logged config.yaml, or zoo tune's best); "
        "options given beside it win",
    )
    train.add_argument(
        "--like",
        metavar="RUN_ID",
        help="run a logged run's configuration again on the same data (RUN_ID or runs:/RUN_ID); options given "
        "beside it win (--like RUN_ID --seed 3)",
    )
    train.set_defaults(handler=_train)
    recipes = train.add_subparsers(dest="recipe", metavar="RECIPE", parser_class=_Parser)
    for name in training.recipe_names():
        recipe = training.get_recipe(name)
        _add_recipe_parser(recipes, recipe)

    listing = commands.add_parser("list", help="list the registered models")
    listing.add_argument("--technique", help="only this technique (mlp, cnn, rnn, gan, rbm, ...)")
    listing.add_argument("--task", help="only models for this task")
    # The cards come from zoo/cards.json (zoo.cards) while it matches the code: no TensorFlow, no Keras.
    listing.set_defaults(handler=_list, loads_tensorflow=False)

    info = commands.add_parser("info", help="print a model's card")
    info.add_argument("name")
    info.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="text (default), json (card.to_dict()) or markdown (card.to_markdown())",
    )
    info.set_defaults(handler=_info, loads_tensorflow=False)

    ui = commands.add_parser("ui", help="open the MLflow UI on the store that `zoo train` writes to")
    ui.add_argument("--tracking-uri", help="store to show (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    # It only starts MLflow's server: TensorFlow would cost seconds and print nothing useful.
    ui.set_defaults(handler=_ui, loads_tensorflow=False)

    # More commands (predict, generate, compare, ...) live in zoo.commands, one module each with
    # `add_parser(commands)`, so a technique adds its command without editing this file.
    import zoo.commands

    for module in pkgutil.iter_modules(zoo.commands.__path__):
        importlib.import_module(f"zoo.commands.{module.name}").add_parser(commands)
    return parser


def _add_recipe_parser(recipes, recipe):
    from zoo import training

    sub = recipes.add_parser(recipe.name, help=recipe.summary, description=(recipe.__doc__ or recipe.summary))
    docs = _field_docs(recipe.Config)
    for name, annotation in training.config_fields(recipe.Config).items():
        default = next(f.default for f in dataclasses.fields(recipe.Config) if f.name == name)
        flag = "--" + name.replace("_", "-")
        help_text = f"{docs.get(name, '')} (default: {default!r})".strip()
        if annotation is bool:
            sub.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            sub.add_argument(flag, dest=name, default=argparse.SUPPRESS, metavar=_metavar(annotation), help=help_text)
    sub.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        default=argparse.SUPPRESS,
        help="Keras backend to train on (default: KERAS_BACKEND, else tensorflow)",
    )
    sub.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a recipe option or a model hyperparameter (see `zoo info MODEL`); repeatable",
    )
    sub.set_defaults(handler=_train)


def _metavar(annotation):
    if typing.get_origin(annotation) is typing.Literal:
        return "{" + ",".join(map(str, typing.get_args(annotation))) + "}"
    if typing.get_origin(annotation) is tuple:
        return "A,B,..."
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    annotation = args[0] if args else annotation
    return getattr(annotation, "__name__", "VALUE").upper()


def _field_docs(config_class):
    from zoo.registry import _arg_docs

    docs = {}
    for klass in reversed(config_class.__mro__):
        docs.update(_arg_docs(klass.__doc__ or ""))
    return docs


def _train(args):
    import zoo
    from zoo import training

    if args.resume:
        if args.config_file or args.like:
            raise ZooError("--resume continues a run as it was: drop --config and --like.")
        if args.recipe:
            raise ZooError("--resume takes the recipe and options from the run: use `zoo train --resume RUN_ID`.")
        result = training.resume(args.resume, tracking_uri=args.resume_tracking_uri, verbose=2)
        return _report(result)
    reproducing = {"config": args.config_file, "like": args.like}
    if not args.recipe and not any(reproducing.values()):
        raise ZooError(
            f"Name a recipe: zoo train {{{','.join(training.recipe_names())}}} (or --config FILE, --like RUN_ID, "
            "--resume RUN_ID)."
        )
    settings = _train_settings(args)
    return _report(zoo.train(args.recipe, verbose=2, backend=getattr(args, "backend", None), **reproducing, **settings))


def _train_settings(args):
    skip = {"command", "recipe", "settings", "handler", "resume", "resume_tracking_uri", "backend"}
    skip |= {"config_file", "like"}
    options = {k: v for k, v in vars(args).items() if k not in skip}
    # The same call as `zoo.train(recipe, epochs=3, ...)` from Python; --set wins over an option.
    return {**options, **parse_settings(args.settings)}


def parse_settings(items):
    """`--set KEY=VALUE` items as {key: value} (also read by `zoo tune`)."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ZooError(f"--set expects KEY=VALUE. Received: --set {item}")
        settings[key.strip()] = value.strip()
    return settings


def _report(result):
    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items()))
    print(f"run {result.run_id} finished: {shown}")
    from zoo import forecasting

    if verdict := forecasting.winner_line(result.metrics):
        print(verdict)
    if result.learned is False and getattr(result.config, "require_learned", False):
        print("zoo: error: --require-learned: the network did not beat its trivial baseline.", file=sys.stderr)
        return 1
    return 0


def _list(args):
    import zoo

    cards = zoo.list(technique=args.technique, task=args.task)
    if not cards:
        raise ZooError(
            f"No model matches technique={args.technique!r} task={args.task!r}. "
            f"Techniques: {', '.join(sorted({c.technique for c in zoo.list()}))}."
        )
    print(repr(cards))
    return 0


def _info(args):
    import json

    from zoo import registry

    card = registry.info(args.name, indexed=True)
    if args.format == "json":
        print(json.dumps(card.to_dict(), indent=2, default=repr))
    elif args.format == "markdown":
        print(card.to_markdown())
    else:
        print(card.format())
    return 0


def _ui(args):
    from zoo import tracking
    from zoo.tracking import database

    uri = tracking.configure(args.tracking_uri) if args.tracking_uri else _local_uri()
    if uri.startswith(("http://", "https://")):
        # A tracking server (`zoo server`, `mlflow server`) serves its own UI; configure checked it answers.
        print(f"The MLflow UI of {uri} is served by that server: open {uri} in a browser.")
        return 0
    if not args.tracking_uri:
        from zoo.tracking import heartbeat

        heartbeat.repair_in_passing(uri)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    shown = database.safe_url(uri)
    print(f"MLflow UI for {shown} on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    from zoo.tracking import mlflow, view

    # Stores written before the zoo tagged its experiments open in GenAI mode: tag them now.
    for experiment_id, name in view.mark_training_experiments(mlflow.MlflowClient(uri)):
        print(f"  {name}: {view.view_url(f'http://{args.host}:{args.port}', experiment_id)}", flush=True)
    os.execv(sys.executable, command)


def _local_uri():
    import mlflow

    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        raise ZooError(f"The tracking URI {uri} is already a server: open it in a browser instead of `zoo ui`.")
    return uri


# A parameter a library error quotes: `name` or `name=value` (value without spaces or backticks).
_QUOTED = re.compile(r"`([a-z][a-z0-9_]*)(?:=([^`\s]*))?`")


def option_flags(parser):
    """{parameter: (flag, boolean)} for every long option of `parser` and of its subcommands."""
    flags = {}
    parsers = [parser]
    while parsers:
        current = parsers.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
                continue
            long = [flag for flag in action.option_strings if flag.startswith("--") and not flag.startswith("--no-")]
            if not long:
                continue
            boolean = isinstance(action, (argparse.BooleanOptionalAction, argparse._StoreTrueAction))
            # The flag's own name first (`--metric` stores into tune_metric), then where it stores.
            for name in (long[0][2:].replace("-", "_"), action.dest):
                flags.setdefault(name, (long[0], boolean))
    return flags


def as_flags(message, flags):
    """Spell the parameters a library error quotes as the command-line options that set them.

    `name` becomes `--name`; `name=value` becomes `--name value` (`--name` / `--no-name` for a
    boolean option); a quoted `key=value` that is no option is a model hyperparameter:
    `--set key=value`. Other backticked text is left as it is.

    Args:
        message: the error's one line.
        flags: {parameter: (flag, boolean)}, from `option_flags`.
    """

    def spell(match):
        name, value = match.group(1), match.group(2)
        if name in flags:
            flag, boolean = flags[name]
            if value is None:
                return flag
            if boolean and value.lower() in ("true", "false"):
                return flag if value.lower() == "true" else "--no-" + flag[2:]
            return f"{flag} {value}"
        if value is not None and name != "set":
            return f"--set {name}={value}"
        return match.group(0)

    return _QUOTED.sub(spell, message)


def main(argv=None):
    """Run the command line; return the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # MLflow's INFO lines ("Creating initial MLflow database tables...") would bury the output.
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"
        # A program that imported MLflow before calling main() had it read the variable already.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    parser = None
    try:
        # The parser is built from the recipes' config dataclasses alone: `--help` never imports
        # TensorFlow, Keras or MLflow (seconds and hundreds of MB).
        parser = build_parser()
        from zoo.training import reproduce_cli

        args = parser.parse_args(reproduce_cli.with_recipe(sys.argv[1:] if argv is None else list(argv)))
        if args.handler is _train and getattr(args, "recipe", None) and not args.resume:
            if not (args.config_file or args.like):
                from zoo.training import prechecks

                # Before TensorFlow, Keras and MLflow load: a bad data file fails in seconds.
                prechecks.check_data(args.recipe, _train_settings(args))
        from zoo import status

        status.enable()
        if getattr(args, "loads_tensorflow", True):
            from zoo import backends
            from zoo.quiet import load_tensorflow, quiet_third_party

            # Within a second of the command, before the seconds of TensorFlow's import.
            # Before Keras is imported (by anything below): Keras reads its backend once.
            status.step(f"{_doing(args)}: loading Keras ({backends.choose(getattr(args, 'backend', None))} backend)")
            load_tensorflow()
            quiet_third_party()
        return args.handler(args) or 0
    except ZooError as error:
        message = as_flags(str(error), option_flags(parser)) if parser is not None else str(error)
        print(f"zoo: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interruption:
        from zoo import faults

        if isinstance(interruption, faults.Interrupted):
            print(faults.interruption_message(interruption), file=sys.stderr)
            return interruption.exit_status
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as error:
        from zoo import faults

        if not isinstance(error, faults.Diverged):
            return _internal_error(error)
        print(f"zoo: training diverged: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `zoo compare | head`: the reader has what it wanted; nothing to report.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - interpreter shutdown flushes it
        return 0
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        return _internal_error(error)


def _doing(args):
    """What the command is about to do, for its first status line: `train mlp`, `export RUN_ID`."""
    target = getattr(args, "recipe", None) or getattr(args, "model", None) or ""
    return f"{args.command} {target}".strip()


def _internal_error(error):
    if os.environ.get("ZOO_DEBUG"):
        raise error
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    print(
        f"zoo: internal error: {type(error).__name__}: {message} (set ZOO_DEBUG=1 for the traceback)", file=sys.stderr
    )
    return 1
