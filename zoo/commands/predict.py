"""`zoo predict MODEL IMAGE...`: classify image files with a trained image model, or read text lines.

MODEL is an MLflow run id, a `runs:/RUN_ID/model` or `models:/NAME/VERSION` URI, a `.keras` file,
or the `--output` folder of `zoo train cnn`. Each image is decoded, checked against the model's
channel count, resized to the model's input size the way the training images were, and classified:

    zoo predict 3f2c...e1 digit.png
    zoo predict runs:/3f2c...e1/model photo.jpg --convert --invert --top 3
    zoo predict out/ a.png b.png

A model from `zoo train ocr` reads each image as a line of text and prints it with its confidence.
"""

import json
import os
import re
import sys

from zoo.errors import ZooError


def add_parser(commands):
    parser = commands.add_parser(
        "predict",
        help="classify image files (zoo train cnn) or read text lines (zoo train ocr) with a trained model",
        description=__doc__,
    )
    parser.add_argument(
        "model",
        metavar="RUN_ID_OR_MODEL_PATH",
        help="MLflow run id, runs:/ or models:/ URI, .keras file, or --output folder",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, BMP, GIF)")
    parser.add_argument("--top", type=int, default=1, help="how many classes to print per image (default: 1)")
    parser.add_argument(
        "--convert",
        action="store_true",
        help="convert images to the model's channels (e.g. a colour photo for a grayscale model)",
    )
    parser.add_argument(
        "--invert",
        action="store_true",
        help="invert pixels: dark ink on light paper for models trained on light-on-dark digits",
    )
    parser.add_argument(
        "--tracking-uri", help="MLflow store of the run (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    parser.set_defaults(handler=_predict)


def _predict(args):
    import numpy as np

    from zoo.datasets import images

    if args.top < 1:
        raise ZooError(f"--top must be at least 1. Received: {args.top}")
    model, class_names = load_model(args.model, args.tracking_uri)
    _warn_if_not_learned(args.model)
    if len(args.images) == 1 and args.images[0].lower().endswith(".csv"):
        return _forecast(model, args)
    if hasattr(model, "read_files"):
        # An OCR model (zoo train ocr): it reads a line of text per image.
        for path, (text, confidence) in zip(args.images, model.read_files(args.images, invert=args.invert)):
            print(f"{path}: {text or '(nothing read)'} ({confidence:.3f})")
        return 0
    height, width, channels = image_input(model, args.model)
    pixels = images.read_images(args.images, (height, width), channels, convert=args.convert, invert=args.invert)
    probabilities = np.asarray(model.predict(pixels, verbose=0))
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ZooError(
            f"{args.model} does not output class probabilities (output shape "
            f"{probabilities.shape[1:]}); zoo predict needs an image classifier."
        )
    for path, row in zip(args.images, probabilities):
        best = np.argsort(row)[::-1][: args.top]
        shown = ", ".join(f"{_label(class_names, i)} ({row[i]:.3f})" for i in best)
        print(f"{path}: {shown}")
    return 0


def _warn_if_not_learned(reference):
    """One line on stderr when the model's run did not beat its trivial baseline (`zoo.learned=false`)."""
    from zoo.training import baselines

    warning = None
    run_json = os.path.join(reference if os.path.isdir(reference) else os.path.dirname(reference) or ".", "run.json")
    if os.path.exists(reference) and os.path.isfile(run_json):
        try:
            with open(run_json) as handle:
                saved = json.load(handle)
        except (OSError, ValueError):
            saved = {}
        if isinstance(saved, dict) and saved.get("learned") is False:
            warning = baselines.not_learned_warning(
                {baselines.LEARNED_TAG: "false"}, str(saved.get("run_id", reference))
            )
    elif re.fullmatch(r"[0-9a-f]{32}", reference):
        warning = baselines.loaded_model_warning(reference)
    elif reference.startswith(("runs:/", "models:/")):
        import mlflow

        try:
            run_id = mlflow.models.get_model_info(reference).run_id
        except Exception:  # noqa: BLE001 - only a warning: `load_model` has reported a bad reference already
            run_id = None
        warning = baselines.loaded_model_warning(run_id)
    if warning:
        print(warning, file=sys.stderr, flush=True)


def _forecast(model, args):
    """`zoo predict MODEL series.csv` with a forecast model: the next `--horizon` values after the
    end of the file, one `time: value` line per step ahead, with its interval when the run made one."""
    from zoo import forecasting

    info = forecasting.forecast_info(args.model, args.tracking_uri)
    if not info:
        raise ZooError(
            f"{args.model} is not a forecast model; a CSV needs one from `zoo train lstm --mode many_to_many "
            "--data series.csv --target COLUMN` (or --dataset sunspots)."
        )
    times, values, bounds = forecasting.forecast_csv(model, info, args.images[0])
    for step, (time, value) in enumerate(zip(times, values)):
        line = f"{time}: {value:.6g}"
        if bounds is not None:
            level = info["interval"]["level"]
            line += f"  ({level:.0%} interval {bounds[0][step]:.6g} to {bounds[1][step]:.6g})"
        print(line)
    return 0


def _label(class_names, index):
    return class_names[index] if class_names and index < len(class_names) else str(index)


def image_input(model, reference):
    """(height, width, channels) the model takes, or a `ZooError` when it does not take one image batch."""
    inputs = getattr(model, "inputs", None) or []
    shape = tuple(inputs[0].shape) if len(inputs) == 1 else ()
    if len(shape) != 4 or None in shape[1:]:
        shown = ", ".join(str(tuple(t.shape)) for t in inputs) or "unknown"
        raise ZooError(
            f"{reference} is not an image model (its inputs: {shown}); zoo predict needs a model from `zoo train cnn`."
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def load_model(reference, tracking_uri=None):
    """Load a Keras model and its class names from a run id, a URI, a `.keras` file or a folder.

    Returns:
        (keras model, class names or None)

    Raises:
        ZooError: when `reference` names nothing loadable.
    """
    if os.path.exists(reference):
        return _load_path(reference)
    if reference.startswith(("runs:/", "models:/")):
        return _load_mlflow(reference, tracking_uri)
    if re.fullmatch(r"[0-9a-f]{32}", reference):
        return _load_mlflow(f"runs:/{reference}/model", tracking_uri, run_id=reference)
    raise ZooError(
        f"{reference} is not a file or folder, an MLflow run id, or a runs:/ or models:/ URI. "
        "Pass what `zoo train cnn` printed (run ID) or its --output folder."
    )


def _load_path(path):
    import keras

    from zoo import registry

    folder = path if os.path.isdir(path) else os.path.dirname(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "MLmodel")):
            return _load_mlflow(os.path.abspath(path), None, local=True)
        path = os.path.join(path, "model.keras")
        if not os.path.isfile(path):
            raise ZooError(
                f"{folder} holds no model.keras: pass the --output folder of `zoo train cnn`, "
                "a .keras file, or an MLflow run id."
            )
    elif not path.endswith(".keras"):
        raise ZooError(f"{path} is not a .keras model file; pass a .keras file, an --output folder, or a run id.")
    registry.names()  # imports the zoo's models, so their custom classes deserialize
    try:
        model = keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - a damaged or foreign file: one line, not a traceback
        raise ZooError(f"Cannot load the Keras model {path} ({_first_line(error)}).") from None
    from zoo.recipes import ocr

    reader = ocr.folder_reader(folder or ".", model)
    return (reader, None) if reader else (model, _labels_beside(folder))


def _labels_beside(folder):
    labels = os.path.join(folder or ".", "labels.json")
    if not os.path.isfile(labels):
        return None
    try:
        with open(labels) as handle:
            return [str(name) for name in json.load(handle)["class_names"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_mlflow(uri, tracking_uri, run_id=None, local=False):
    import mlflow
    from mlflow.exceptions import MlflowException

    from zoo import registry, tracking

    # Progress bars for a few kilobytes of artifacts would only clutter the predictions.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    store = "" if local else tracking.configure(tracking_uri)
    try:
        if run_id:
            mlflow.MlflowClient().get_run(run_id)
        info = mlflow.models.get_model_info(uri)
        registry.names()
        if (info.metadata or {}).get("task") == "ocr":
            from zoo.recipes import ocr

            return ocr.mlflow_reader(uri, info.metadata), None
        model = mlflow.keras.load_model(uri)
    except MlflowException as error:
        where = f" in the MLflow store {store}" if store else ""
        raise ZooError(
            f"Cannot load the model {uri}{where} ({_first_line(error)}). Check the run id or URI, and --tracking-uri."
        ) from None
    except (OSError, ValueError) as error:
        raise ZooError(f"Cannot load the model {uri} ({_first_line(error)}).") from None
    names = (info.metadata or {}).get("class_names")
    return model, [str(name) for name in names] if names else None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
