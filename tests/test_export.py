"""`zoo export`: each exported file reloaded by its own runtime predicts what the Keras model does.

The runtimes are the real ones: TensorFlow for a SavedModel, onnxruntime for ONNX, the LiteRT
interpreter (ai-edge-litert) for `.tflite`. Models are small and untrained: the export must keep
the computation, whatever the weights are.
"""

import numpy as np
import pytest

import zoo

TOLERANCE = 1e-4


def _saved(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    return path


def _reload_and_predict(out, format, inputs):
    """Each runtime called directly, as a deployment would."""
    if format == "tf_saved_model":
        import tensorflow as tf

        reloaded = tf.saved_model.load(str(out))  # kept: serve() needs the object's variables alive
        return np.asarray(reloaded.serve(inputs))
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        feeds = session.get_inputs()
        if isinstance(inputs, list):
            by_name = {"latent": inputs[0], "label": inputs[1]}
            return session.run(None, {f.name: by_name[f.name.split(":")[0]] for f in feeds})[0]
        return session.run(None, {feeds[0].name: inputs})[0]
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(out)).get_signature_runner()
    names = list(runner.get_input_details())
    if isinstance(inputs, list):
        feed = {name: inputs[0] if "latent" in name else inputs[1] for name in names}
    else:
        feed = {names[0]: inputs}
    result = runner(**feed)
    return result[sorted(result)[0]]


def _cnn():
    return zoo.get("cnn", input_shape=(8, 8, 1), num_classes=10, filters=(4,), dense_units=8)


RNG = np.random.default_rng(0)
DIGITS = (RNG.random((3, 8, 8, 1)) * 255).astype("float32")


@pytest.mark.parametrize(
    "format, out",
    [("tf_saved_model", "cnn_saved_model"), ("onnx", "cnn.onnx"), ("litert", "cnn.tflite")],
)
def test_the_cnn_exports_to_each_format_and_predicts_the_same(run_cli, tmp_path, format, out):
    model = _cnn()
    status, stdout, err = run_cli("export", _saved(model, tmp_path), "--format", format, "--out", tmp_path / out)
    assert status == 0, err
    assert stdout.startswith(f"wrote {format} to ")
    got = _reload_and_predict(tmp_path / out, format, DIGITS)
    # Keras with training=False: the export drops the random augmentation, as inference does.
    np.testing.assert_allclose(got, np.asarray(model(DIGITS, training=False)), atol=TOLERANCE)


@pytest.mark.parametrize(
    "name, format, inputs",
    [
        ("gan", "onnx", [RNG.standard_normal((3, 8)).astype("float32"), np.array([[1], [2], [3]], "int32")]),
        ("rbm", "litert", (RNG.random((3, 64)) > 0.5).astype("float32")),
        ("gru", "litert", RNG.random((3, 8, 8)).astype("float32")),
        ("lstm", "onnx", RNG.integers(0, 20, (3, 6)).astype("int32")),
        ("forecast", "onnx", (RNG.random((3, 8, 2)) * 50 + 100).astype("float32")),
    ],
)
def test_the_inference_part_of_other_techniques_exports(name, format, inputs, tmp_path):
    from zoo.commands import export

    overrides = {
        "gan": {"image_shape": (8, 8, 1), "num_classes": 10, "latent_dim": 8, "generator_filters": 8},
        "rbm": {"input_shape": (64,), "hidden_units": 6},
        "gru": {"input_shape": (8, 8), "num_outputs": 10, "units": 4},
        # A text classifier on token ids (padding 0 masked): served models vectorize texts first.
        "lstm": {"input_shape": (6,), "vocabulary_size": 20, "num_outputs": 2, "task": "binary", "units": 4},
        # The default forecast: raw values scaled in and out inside the model, on the target's changes.
        "forecast": {
            "mode": "many_to_many",
            "input_shape": (8, 2),
            "num_outputs": 1,
            "task": "regression",
            "units": 4,
            "input_mean": (1.0, 120.0),
            "input_std": (3.0, 20.0),
            "output_mean": (0.5,),
            "output_std": (2.0,),
            "target_transform": "diff",
            "members": 2,
            "linear_lags": 8,
        },
    }[name]
    model = zoo.get("gru" if name == "forecast" else name, **overrides)
    out = tmp_path / ("model.onnx" if format == "onnx" else "model.tflite")
    export.export(model, str(out), format)
    got = _reload_and_predict(out, format, inputs)
    expected = model(inputs, training=False) if name != "rbm" else model.transform(inputs)
    np.testing.assert_allclose(got, np.asarray(expected), atol=TOLERANCE)


def test_an_mlp_with_text_columns_exports_as_saved_model_and_is_refused_by_onnx(run_cli, tmp_path):
    features = {
        "score": {"kind": "numeric", "mean": 0.0, "variance": 1.0},
        "city": {"kind": "categorical", "dtype": "string", "vocabulary": ["Lima", "Oslo"]},
    }
    model = zoo.get("mlp", features=features, hidden_units=(4,))
    path = _saved(model, tmp_path)
    status, _, err = run_cli("export", path, "--format", "tf_saved_model", "--out", tmp_path / "saved")
    assert status == 0, err
    rows = {"score": np.array([[0.5], [-1.0]], "float32"), "city": np.array([["Oslo"], ["Lima"]], object)}
    got = _reload_and_predict(tmp_path / "saved", "tf_saved_model", rows)
    np.testing.assert_allclose(got, np.asarray(model(rows, training=False)), atol=TOLERANCE)

    status, _, err = run_cli("export", path, "--format", "onnx", "--out", tmp_path / "mlp.onnx")
    assert status == 2
    assert err.startswith("zoo: error: 'mlp' exports to onnx, but onnxruntime cannot run the file") or err.startswith(
        "zoo: error: Cannot export 'mlp' to onnx"
    )
    assert err.count("\n") == 1 and "tf_saved_model" in err
    assert not (tmp_path / "mlp.onnx").exists()


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--format", "onnx", "--out", "model.tflite"], "--format onnx writes one file ending in .onnx"),
        (["--format", "tf_saved_model", "--out", "no/such/folder/x"], "The folder of --out does not exist"),
    ],
)
def test_bad_export_options_are_refused_in_one_line(run_cli, tmp_path, argv, pattern):
    status, _, err = run_cli("export", _saved(_cnn(), tmp_path), *argv)
    assert status == 2 and pattern in err and err.count("\n") == 1
