"""Logged models served on raw inputs: `mlflow.pyfunc` in-process, and real `zoo serve` processes.

Three `mlflow models serve` servers (the MLP on a table with text columns, the CNN, the GAN's
generator) start together, once for the module, without the virtual environment on PATH; each
answers HTTP on 127.0.0.1. Models other than the trained MLP are logged untrained: serving
does not depend on what the weights learned, and their outputs are compared with Keras'.
"""

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

SERVER_START_TIMEOUT = 240


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_untrained(recipe_name, options=None, overrides=None):
    """Load a recipe's real data, build its model, and log it through the recipe's `log_model`.

    Returns:
        (keras model, training.Data, model URI)
    """
    import mlflow

    from zoo import registry, training

    recipe = training.get_recipe(recipe_name)
    config, _ = training.make_config(recipe, options or {})
    data = recipe.load_data(config)
    model = registry.get(recipe.model_name(config), **recipe.model_overrides(config, data), **(overrides or {}))
    # Named: MLflow remembers the last experiment it used, which may belong to another store.
    mlflow.set_experiment("serving")
    with mlflow.start_run():
        info = recipe.log_model(model, data)
    return model, data, info.model_uri


def _table(path, rows=240, seed=0):
    """A table with a numeric column, an integer category and a text category, and a learnable target."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Oslo", "Lima", "Pune"], rows)
    score = rng.normal(size=rows)
    rank = rng.integers(1, 4, rows)
    admit = ((score + 1.5 * (city == "Oslo") - 0.5 * rank) > -0.5).astype(int)
    pd.DataFrame({"score": score, "city": city, "rank": rank, "admit": admit}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A module-wide MLflow store, also the servers' (they read MLFLOW_TRACKING_URI)."""
    import mlflow

    folder = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{folder}/mlflow.db"
    previous, previous_cwd = os.environ.get("MLFLOW_TRACKING_URI"), os.getcwd()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.chdir(folder)
    mlflow.set_tracking_uri(uri)
    try:
        yield uri, folder
    finally:
        os.chdir(previous_cwd)
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def models(store):
    """{name: (keras model, model URI)}: the MLP trained and registered, the CNN and GAN logged."""
    from zoo import training

    _, folder = store
    table = _table(str(folder / "admissions.csv"))
    mlp = training.train(
        "mlp", {"data": table, "target": "admit", "epochs": 3, "register": "served-mlp"}, {"hidden_units": "8"}
    )
    cnn, _, cnn_uri = log_untrained("cnn", overrides={"filters": (4,), "dense_units": 8})
    gan, _, gan_uri = log_untrained(
        "gan", overrides={"generator_filters": 8, "discriminator_filters": 8, "latent_dim": 8}
    )
    return {
        "mlp": (mlp.model, "models:/served-mlp@champion"),
        "cnn": (cnn, cnn_uri),
        "gan": (gan, gan_uri),
    }


@pytest.fixture(scope="module")
def servers(models, store):
    """`zoo serve` for each model, started together; {name: base URL} once each answers /health."""
    from zoo.commands import serve

    uri, folder = store
    # Not the virtual environment's bin: `zoo serve` must find uvicorn without it (MLflow alone exits 127).
    env = dict(os.environ, PATH="/usr/bin:/bin", MLFLOW_TRACKING_URI=uri)
    started = {}
    try:
        for name, (_, model_uri) in models.items():
            port = _free_port()
            log = open(folder / f"{name}.log", "w")
            process = subprocess.Popen(
                [sys.executable, "-m", "zoo", "serve", model_uri, "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            started[name] = (f"http://127.0.0.1:{port}", process, log, folder / f"{name}.log")
        for url, process, _, log_path in started.values():
            serve.wait_healthy(url, process, SERVER_START_TIMEOUT, log_path)
        yield {name: url for name, (url, *_) in started.items()}
    finally:
        for _, process, log, _ in started.values():
            serve.stop(process)
            log.close()


def invoke(url, body):
    """POST `body` as JSON to /invocations; return (status, parsed JSON answer)."""
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# === Over HTTP ===

ROWS = [
    {"score": 0.3, "city": "Oslo", "rank": 1},
    {"score": -1.2, "city": "Lima", "rank": 3},
    {"score": 2.0, "city": "Pune", "rank": 2},
]


def test_the_mlp_answers_table_rows_with_text_columns_as_keras_does(servers, models, store):
    model, _ = models["mlp"]
    # What `zoo serve` printed: the request, and the answer's columns.
    printed = (store[1] / "mlp.log").read_text()
    assert 'the answer: {"predictions": [{"0": ..., "1": ..., "label": ...}]}, one object per row' in printed
    assert '"params": {"output": "array"}' in printed
    status, answer = invoke(servers["mlp"], {"dataframe_records": ROWS})
    assert status == 200, answer
    frame = pd.DataFrame(ROWS)
    expected = model(
        {
            "score": frame[["score"]].to_numpy("float32"),
            "city": frame[["city"]].to_numpy(object),
            "rank": frame[["rank"]].to_numpy("int64"),
        },
        training=False,
    )
    # One probability per class, named by the class the run trained on (admit 0 or 1), and the label.
    named = pd.DataFrame(answer["predictions"])
    assert list(named.columns) == ["0", "1", "label"], answer
    np.testing.assert_allclose(named["1"], np.asarray(expected).reshape(-1), atol=1e-5)
    np.testing.assert_allclose(named["0"] + named["1"], 1, atol=1e-6)
    assert named["label"].tolist() == [("1" if p > 0.5 else "0") for p in named["1"]]
    # The model's own array, for a caller who asks for it.
    status, answer = invoke(servers["mlp"], {"dataframe_records": ROWS, "params": {"output": "array"}})
    assert status == 200, answer
    np.testing.assert_allclose(np.asarray(answer["predictions"]), np.asarray(expected), atol=1e-5)
    status, answer = invoke(servers["mlp"], {"dataframe_records": ROWS, "params": {"output": "list"}})
    assert status == 400 and "'columns' or 'array'" in answer["message"], answer
    # The same rows as dataframe_split, and an integer in the numeric column.
    split = {"columns": ["score", "city", "rank"], "data": [[1, "Oslo", 1]]}
    status, answer = invoke(servers["mlp"], {"dataframe_split": split})
    assert status == 200, answer
    assert len(answer["predictions"]) == 1 and answer["predictions"][0]["label"] in ("0", "1")


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"score": 0.3, "rank": 1}], "missing inputs ['city']"),
        ([{"score": 0.3, "city": "Rome", "rank": 1}], "Unknown category 'Rome' in column 'city'"),
        ([{"score": 0.3, "city": "Oslo", "rank": 9}], "Unknown category 9 in column 'rank'"),
        ([{"score": "high", "city": "Oslo", "rank": 1}], "score"),
        # json.dumps writes Infinity, which the server parses: training refuses it, serving too.
        ([{"score": float("inf"), "city": "Oslo", "rank": 1}], "Column 'score' holds inf in row 0"),
    ],
    ids=[
        "missing-column",
        "unknown-text-category",
        "unknown-integer-category",
        "text-in-numeric-column",
        "infinite-number",
    ],
)
def test_bad_table_rows_get_400_naming_the_problem(servers, rows, message):
    status, answer = invoke(servers["mlp"], {"dataframe_records": rows})
    assert status == 400, answer
    assert message in answer["message"]


def test_the_cnn_answers_raw_pixels_and_refuses_a_wrong_shape(servers, models):
    from zoo.datasets import images

    model, _ = models["cnn"]
    pixels = images.load("digits", seed=0).x_test[:4] * images.PIXEL_MAX
    expected = np.asarray(model(pixels, training=False))
    status, answer = invoke(servers["cnn"], {"inputs": pixels.tolist()})
    assert status == 200, answer
    named = pd.DataFrame(answer["predictions"])
    digits = [str(d) for d in range(10)]
    assert list(named.columns) == [*digits, "label"], answer
    np.testing.assert_allclose(named[digits].to_numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(named[digits].sum(axis=1), 1, atol=1e-5)
    assert named["label"].tolist() == [str(d) for d in expected.argmax(axis=1)]
    status, answer = invoke(servers["cnn"], {"inputs": pixels.tolist(), "params": {"output": "array"}})
    assert status == 200, answer
    np.testing.assert_allclose(np.asarray(answer["predictions"]), expected, atol=1e-5)

    status, answer = invoke(servers["cnn"], {"inputs": pixels[:, :7].tolist()})
    assert status == 400, answer
    assert "shape" in answer["message"] and "(-1, 8, 8, 1)" in answer["message"]


def test_the_gan_answers_labels_and_seeds_with_images(servers, models):
    gan, _ = models["gan"]
    rows = [{"label": 7, "seed": 0}, {"label": 7, "seed": 1}, {"label": 3, "seed": 0}]
    status, answer = invoke(servers["gan"], {"dataframe_records": rows})
    assert status == 200, answer
    named = pd.DataFrame(answer["predictions"])
    assert list(named.columns) == ["seed", "label", "image"], answer
    assert named["seed"].tolist() == [0, 1, 0] and named["label"].tolist() == [7, 7, 3]
    served = np.asarray(named["image"].tolist())
    assert served.shape == (3, 8, 8, 1)
    assert 0 <= served.min() and served.max() <= 255
    latent = np.stack([np.random.default_rng(s).standard_normal(8) for s in (0, 1, 0)]).astype("float32")
    expected = 255 * np.asarray(gan([latent, np.array([[7], [7], [3]], "int32")], training=False))
    np.testing.assert_allclose(served, expected, atol=1e-3)
    status, answer = invoke(servers["gan"], {"dataframe_records": rows, "params": {"output": "array"}})
    assert status == 200, answer
    np.testing.assert_allclose(np.asarray(answer["predictions"]), expected, atol=1e-3)

    status, answer = invoke(servers["gan"], {"dataframe_records": [{"label": 12, "seed": 0}]})
    assert status == 400, answer
    assert "Label 12 is out of range" in answer["message"]
    status, answer = invoke(servers["gan"], {"dataframe_records": [{"seed": 0}]})
    assert status == 400, answer
    assert "label" in answer["message"]


def test_serve_refuses_a_port_in_use_naming_its_process(run_cli):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # Checked before the model: the port is the first thing the server would fail on.
        status, out, err = run_cli("serve", "0123456789abcdef0123456789abcdef", "--port", port)
    assert status == 2 and not out, (out, err)
    assert err.startswith(f"zoo: error: Port {port} on 127.0.0.1 is not free") and err.count("\n") == 1, err
    assert f"held by process {os.getpid()} (" in err, err


def test_serve_refuses_an_unknown_model_in_one_line(run_cli):
    status, _, err = run_cli("serve", "models:/no-such-model@champion")
    assert status == 2
    assert err.startswith("zoo: error: No model at models:/no-such-model@champion") and err.count("\n") == 1


# === In-process pyfunc: the other techniques ===


def test_a_text_classifier_is_served_on_raw_texts(tracking_uri, tmp_path):
    import mlflow

    texts = ["a great and moving film", "dull, boring and long", "great acting", "boring plot"] * 15
    labels = ["pos", "neg", "pos", "neg"] * 15
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    model, data, uri = log_untrained("lstm", {"data": str(path), "sequence_length": 6}, {"units": 4})
    served = mlflow.pyfunc.load_model(uri)
    asked = pd.DataFrame({"text": ["A GREAT film!", "never seen words"]})
    seq = data.loaded
    ids = np.asarray(
        [[seq.vocabulary.index(w) for w in ("a", "great", "film")] + [0, 0, 0], [1, 1, 1, 0, 0, 0]], dtype="int32"
    )
    expected = np.asarray(model(ids))
    answer = served.predict(asked)
    assert list(answer.columns) == ["neg", "pos", "label"]
    np.testing.assert_allclose(answer["pos"], expected.reshape(-1), atol=1e-6)
    np.testing.assert_allclose(served.predict(asked, params={"output": "array"}), expected, atol=1e-6)
    assert served.metadata.get_input_schema().input_names() == ["text"]
    assert served.metadata.get_output_schema().input_names() == ["neg", "pos", "label"]


def test_a_captioner_is_served_on_images_and_answers_text(tracking_uri):
    import mlflow

    _, data, uri = log_untrained("lstm", {"mode": "one_to_many"}, {"units": 4})
    images = data.loaded.x_test[0][:3]
    answer = mlflow.pyfunc.load_model(uri).predict(images)
    assert list(answer.columns) == ["caption"] and len(answer) == 3
    assert all(isinstance(caption, str) for caption in answer["caption"])


def test_the_rbm_is_served_on_binary_rows_and_answers_hidden_features(tracking_uri):
    import mlflow

    model, data, uri = log_untrained("rbm", overrides={"hidden_units": 6})
    rows = np.asarray(data.example_inputs, dtype="float32")[:3]
    served = mlflow.pyfunc.load_model(uri)
    features = served.predict(rows)
    assert list(features.columns) == [f"hidden_{i}" for i in range(1, 7)]
    np.testing.assert_allclose(features.to_numpy(), model.transform(rows), atol=1e-6)
    np.testing.assert_allclose(served.predict(rows, params={"output": "array"}), model.transform(rows), atol=1e-6)
    # A model logged before answers were named (no `answer` in its serving.json) keeps its array.
    from zoo import serving

    np.testing.assert_allclose(serving.Tensor().predict(model, rows), model.transform(rows), atol=1e-6)
    # The Keras flavor is still there: zoo predict, zoo generate and zoo export load it.
    assert type(mlflow.keras.load_model(uri)).__name__ == "RBM"


def test_a_regression_answers_a_value_column(tracking_uri, tmp_path):
    import mlflow

    table = _table(str(tmp_path / "scores.csv"), rows=60)
    model, data, uri = log_untrained("mlp", {"data": table, "target": "score"}, {"hidden_units": "4"})
    served = mlflow.pyfunc.load_model(uri)
    rows = pd.DataFrame({"city": ["Oslo", "Lima"], "rank": [1, 3], "admit": [1, 0]})
    answer = served.predict(rows)
    assert list(answer.columns) == ["value"] and len(answer) == 2
    array = served.predict(rows, params={"output": "array"})
    assert array.shape == (2, 1)
    np.testing.assert_allclose(answer["value"], array.reshape(-1), atol=1e-6)
    assert served.metadata.get_output_schema().input_names() == ["value"]
