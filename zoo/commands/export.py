"""`zoo export MODEL --format FORMAT`: write a trained model in a format people deploy.

MODEL is what `zoo predict` takes: an MLflow run id, a `runs:/` or `models:/` URI, a `.keras`
file or an `--output` folder. The export goes through Keras' own `model.export`:

    zoo export models:/zoo-cnn@champion --format tf_saved_model --out cnn_saved_model
    zoo export RUN_ID --format onnx --out cnn.onnx            (needs pip install ".[export]")
    zoo export RUN_ID --format litert --out cnn.tflite        (needs pip install ".[export]")

What is exported is the inference part, the same computation as the served model without its
adapter: the GAN's generator (latent vector and label in, pixels in [0, 1] out), the RBM's hidden
features, the greedy caption decoder (token probabilities), a text classifier on token ids; no
`Random*` augmentation layer (identities at inference). Each file is reloaded by its own runtime
and compared with Keras; what a format cannot take is refused in one line and no file is left:
the MLP in ONNX (tf2onnx turns its normalization constants into inputs and has no lookup tables),
the MLP with integer categories in LiteRT, the caption decoder in ONNX and LiteRT (argmax's
Bitcast). README's export table lists each model.
"""

import contextlib
import os
import sys

import numpy as np

from zoo.errors import ZooError

FORMATS = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}
# What each format needs beyond TensorFlow, by the module Keras imports.
NEEDS = {"tf_saved_model": (), "onnx": ("tf2onnx", "onnx"), "litert": ()}
# The runtime that reloads each format to check it (TensorFlow ships with the zoo; the rest: [export]).
RUNTIMES = {"tf_saved_model": "tensorflow", "onnx": "onnxruntime", "litert": "ai_edge_litert"}


def add_parser(commands):
    parser = commands.add_parser(
        "export",
        help="export a trained model to TensorFlow SavedModel, ONNX or LiteRT",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("model", metavar="MODEL_URI", help="run id, runs:/ or models:/ URI, .keras file or folder")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="export format")
    parser.add_argument("--out", help="where to write (default: model_saved_model/, model.onnx or model.tflite)")
    parser.add_argument(
        "--tracking-uri", help="MLflow store of the model (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    parser.set_defaults(handler=_export)


def _export(args):
    from zoo.commands.predict import load_model

    out = args.out or ("model_saved_model" if args.format == "tf_saved_model" else "model" + FORMATS[args.format])
    from zoo import status

    check_out(out, args.format)
    status.step("loading the model")
    model, _ = load_model(args.model, args.tracking_uri)
    status.step(f"exporting to {args.format}")
    difference = export(model, out, args.format)
    size = folder_size(out)
    runtime = RUNTIMES[args.format]
    checked = (
        f"; checked: {runtime} reloads it and predicts as Keras does (largest difference {difference:.2g})"
        if difference is not None
        else f"; not checked ({runtime} is not installed)"
    )
    print(f"wrote {args.format} to {out} ({size / 1e6:.2f} MB){checked}")
    return 0


def check_out(out, format):
    """Raise `ZooError` when `out` cannot take an export of `format`."""
    suffix = FORMATS[format]
    if suffix and not out.endswith(suffix):
        raise ZooError(f"--format {format} writes one file ending in {suffix}. Received: --out {out}")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ZooError(f"{out} already exists; remove it or choose another --out.")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ZooError(f"The folder of --out does not exist: {folder}. Create it or choose another path.")


def inference_model(model):
    """The part of `model` that has a meaning at inference, as a model Keras can export.

    A GAN exports its generator (with the averaged weights when it keeps an average); a Functional
    model exports itself without its `Random*` augmentation layers, which are identities at
    inference but leave random-number operators that ONNX has no equivalent for.
    """
    import keras

    from zoo.models import gan

    if isinstance(model, gan.GAN):
        if not model.ema_momentum:
            return model.generator
        generator = keras.models.clone_model(model.generator)
        pairs = zip(
            generator.trainable_variables + generator.non_trainable_variables,
            model.ema_trainable + model.ema_non_trainable,
        )
        for variable, average in pairs:
            variable.assign(average)
        return generator
    layers = getattr(model, "layers", [])
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        return model
    if not any(type(layer).__name__.startswith("Random") or _recurrent(layer.get_config()) for layer in layers):
        return model

    def for_inference(layer):
        if type(layer).__name__.startswith("Random"):
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        _unroll(config)
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=for_inference)
    for layer in clone.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return clone


def _recurrent(config):
    return "unroll" in config or any(_recurrent(c.get("config", {})) for c in _nested(config))


def _nested(config):
    return [config[key] for key in ("layer", "backward_layer") if isinstance(config.get(key), dict)]


def _unroll(config):
    """Recurrent layers unrolled over their (fixed) steps: LiteRT has no operator for the loop's
    tensor lists; the same weights give the same outputs."""
    if "unroll" in config:
        config["unroll"] = True
    for nested in _nested(config):
        _unroll(nested.get("config", {}))


def input_signature(model):
    """Input specs for `model.export` when Keras cannot read them off the model (subclassed RBM)."""
    import keras

    if getattr(model, "inputs", None):
        return None
    shape = (model.get_build_config() or {}).get("input_shape")
    if shape is None:
        raise ZooError(f"Cannot tell the input shape of the '{model.name}' model to export it.")
    return [keras.InputSpec(shape=(None, *shape[1:]), dtype="float32")]


def export(model, out, format):
    """Export the inference part of `model` to `out` in `format`.

    Returns:
        The largest difference between the file's predictions (through its own runtime) and
        Keras', or None when that runtime is not installed.

    Raises:
        ZooError: when a package the format needs is missing or the model has an operation the
            format cannot express.
    """
    import importlib.util

    import keras

    missing = [name for name in NEEDS[format] if importlib.util.find_spec(name) is None]
    if missing:
        raise ZooError(
            f"--format {format} needs {', '.join(missing)}: pip install 'keras-technique-zoo[export]' "
            f"(or pip install {' '.join(missing)})."
        )
    target = inference_model(model)
    signature = input_signature(target)
    inputs = sample_inputs(target, signature)
    try:
        # The ONNX exporter refuses a model that has never been called (a freshly loaded one).
        expected = np.asarray(keras.ops.convert_to_numpy(target(inputs, training=False)))
        # LiteRT: built-in operators only, so the file runs in the plain interpreter (Keras also
        # allows TensorFlow ops, which need the Flex delegate that ai-edge-litert does not ship).
        options = {"target_spec": {"supported_ops": [_builtins()]}} if format == "litert" else {}
        with _quiet_converters():
            target.export(out, format=format, verbose=False, input_signature=signature, **options)
    except Exception as error:  # noqa: BLE001 - a converter's failure: one line naming the format
        _remove(out)
        raise ZooError(
            f"Cannot export '{model.name}' to {format} ({_first_line(error)}); try --format tf_saved_model."
        ) from None
    from zoo import status

    status.step(f"checking the file with {RUNTIMES[format]} against Keras")
    return check_exported(model, target, out, format, inputs, expected)


def check_exported(model, target, out, format, inputs, expected, tolerance=1e-4):
    """Reload `out` with its own runtime and compare with the Keras model; remove it when they differ.

    Returns:
        The largest absolute difference from Keras, or None when the runtime is not installed.

    Raises:
        ZooError: when the runtime cannot load or run the file, or predicts other values.
    """
    import importlib.util

    runtime = RUNTIMES[format]
    if importlib.util.find_spec(runtime) is None:
        print(f"zoo: warning: {runtime} is not installed; the {format} export was not checked.", file=sys.stderr)
        return None
    try:
        names = [t.name for t in getattr(target, "inputs", None) or []]
        got = run_exported(out, format, inputs, names)
    except Exception as error:  # noqa: BLE001 - an operator the runtime lacks
        _remove(out)
        raise ZooError(
            f"'{model.name}' exports to {format}, but {runtime} cannot run the file ({_first_line(error)}); "
            "use --format tf_saved_model."
        ) from None
    difference = float(np.max(np.abs(got.astype("float64") - expected))) if got.shape == expected.shape else None
    if difference is None or difference > tolerance:
        _remove(out)
        shown = "a different shape" if difference is None else f"values up to {difference:.3g} apart"
        raise ZooError(f"The {format} export of '{model.name}' predicts {shown} from Keras; use tf_saved_model.")
    return difference


def _remove(out):
    import shutil

    if os.path.isdir(out):
        shutil.rmtree(out, ignore_errors=True)
    elif os.path.exists(out):
        os.remove(out)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


@contextlib.contextmanager
def _quiet_converters():
    """Silence the converters' log lines (tf2onnx lists every op it rewrites): a failure is reported
    once, by the check that reloads the file."""
    import logging

    loggers = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _builtins():
    import tensorflow as tf

    return tf.lite.OpsSet.TFLITE_BUILTINS


def sample_inputs(model, signature=None, count=3, seed=0):
    """Inputs to compare an export with Keras: uniform floats, ids 0 and 1, and '' for text inputs."""
    import keras

    rng = np.random.default_rng(seed)

    def one(spec):
        shape = (count, *(1 if d is None else d for d in spec.shape[1:]))
        dtype = keras.backend.standardize_dtype(spec.dtype)
        if dtype == "string":
            return np.full(shape, "", dtype=object)
        if "float" in dtype:
            return rng.random(shape).astype(dtype)
        # Ids 0 and 1: a valid label, a padding and a real token, an out-of-vocabulary category.
        return rng.integers(0, 2, shape).astype(dtype)

    if signature is not None:
        return one(signature[0])
    return keras.tree.map_structure(one, model.input)


def folder_size(path):
    """Bytes in a file, or in every file under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


# === Reload with each format's own runtime ===


def run_exported(out, format, inputs, input_names=None):
    """Predict `inputs` with the exported file through its own runtime; return a numpy array.

    Runtimes: TensorFlow for a SavedModel, onnxruntime for ONNX, the LiteRT interpreter
    (`ai_edge_litert`) for `.tflite`. `inputs` is one array, a dict of arrays by input name, or a
    list of arrays in the order of `input_names`.
    """
    named = inputs if isinstance(inputs, dict) else None
    if isinstance(inputs, (list, tuple)):
        # A model with a list of inputs (the GAN's generator): the runtimes name them as Keras does.
        named = dict(zip(input_names or [f"input_{i}" for i in range(len(inputs))], inputs))
    if format == "tf_saved_model":
        import tensorflow as tf

        reloaded = tf.saved_model.load(out)
        return np.asarray(reloaded.serve(inputs))
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        # tf2onnx may list constants as graph inputs too: feed the inputs that are the model's.
        feed = {n: _match(named, n) for n in names if _match(named, n, None) is not None} if named else {}
        return np.asarray(session.run(None, feed or {names[0]: inputs})[0])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=out)
    runner = interpreter.get_signature_runner()
    names = list(runner.get_input_details())
    feed = {n: _match(named, n) for n in names} if named else {names[0]: inputs}
    result = runner(**feed)
    return np.asarray(result[sorted(result)[0]])


def _match(named, name, missing=ZooError):
    """The array of the input a runtime calls `name` (Keras names, sanitized by the converters)."""
    import re

    def plain(text):
        return re.sub(r"[^a-z0-9]", "", text.lower())

    for key, value in named.items():
        if plain(str(key)) == plain(name.split(":")[0]):
            return value
    if missing is None:
        return None
    raise ZooError(f"The exported model has an input '{name}' that matches none of {', '.join(map(str, named))}.")
