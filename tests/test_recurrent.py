"""Recurrent models and recipes: shape contracts per cell and mode, masking, greedy decoding, short
training runs on the real sequences, and bad input (one line, exit 2, no run left RUNNING)."""

import time

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest

import zoo
from tests import baselines
from tests.conftest import running_runs
from zoo import training
from zoo.datasets import sequences, text_ids
from zoo.models import recurrent

CELLS = ("rnn", "lstm", "gru")
# Small models keep the training tests quick; accuracy lives in benchmarks/recurrent.py.
TINY = {"units": "8", "embedding_dim": "4", "encoder_units": "8", "bidirectional": "false"}


# === Shape contracts ===


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_one_and_many_to_many_shapes(cell, bidirectional):
    x = np.random.default_rng(0).random((3, 7, 5)).astype("float32")
    one = zoo.get(
        cell, mode="many_to_one", input_shape=(7, 5), num_outputs=4, units=(6, 5), bidirectional=bidirectional
    )
    many = zoo.get(
        cell,
        mode="many_to_many",
        input_shape=(7, 5),
        num_outputs=4,
        units=(6,),
        bidirectional=bidirectional,
        step_units=(3,),
    )
    assert one(x).shape == (3, 4)
    assert many(x).shape == (3, 7, 4)
    assert one.name == f"{cell}_many_to_one" and many.name == f"{cell}_many_to_many"
    np.testing.assert_allclose(np.asarray(one(x)).sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_one_to_many_teacher_forcing_and_greedy_decoding_shapes(cell, tmp_path):
    model = zoo.get(
        cell, mode="one_to_many", input_shape=(8, 8, 1), num_outputs=9, output_steps=5, units=(6, 4), encoder_units=7
    )
    images = np.random.default_rng(0).random((3, 8, 8, 1)).astype("float32")
    previous = np.array([[1, 3, 4, 0, 0]] * 3, dtype="int32")
    assert model({"image": images, "previous_tokens": previous}).shape == (3, 5, 9)
    decoder = recurrent.greedy_decoder(model)
    probabilities = np.asarray(decoder(images))
    assert probabilities.shape == (3, 5, 9)
    tokens = recurrent.greedy_decode(model, images)
    assert tokens.shape == (3, 5) and tokens.dtype.kind == "i"
    np.testing.assert_array_equal(tokens, probabilities.argmax(-1))
    if cell != "lstm":
        return
    # The decoder rebuilt from a saved and loaded model (two states per layer here) decodes the same.
    path = tmp_path / "captioner.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(recurrent.greedy_decode(loaded, images), tokens)


def test_greedy_decoding_feeds_each_prediction_back():
    # The decoder's first step equals teacher forcing with START; step 2 equals teacher forcing on
    # [START, first prediction]: the loop feeds back what it predicted, not the truth.
    model = zoo.get(
        "gru",
        mode="one_to_many",
        input_shape=(4,),
        num_outputs=6,
        output_steps=3,
        bidirectional=False,
        units=(5,),
        dropout=0.0,
    )
    image = np.random.default_rng(1).random((2, 4)).astype("float32")
    greedy = np.asarray(recurrent.greedy_decoder(model)(image))
    first = greedy[:, 0].argmax(-1)
    forced = np.asarray(
        model(
            {
                "image": image,
                "previous_tokens": np.stack([np.full(2, recurrent.START), first, np.zeros(2)], axis=1).astype("int32"),
            }
        )
    )
    np.testing.assert_allclose(greedy[:, :2], forced[:, :2], rtol=1e-5, atol=1e-6)


def test_vector_input_and_token_input_shapes():
    tokens = zoo.get("lstm", input_shape=(6,), vocabulary_size=20, task="binary")
    ids = np.array([[5, 3, 2, 0, 0, 0], [7, 1, 1, 1, 1, 1]], dtype="int32")
    assert tokens(ids).shape == (2, 1)
    tagger = zoo.get(
        "rnn", mode="many_to_many", input_shape=(0, 2), task="regression", num_outputs=3, bidirectional=False
    )
    assert tagger(np.zeros((2, 11, 2), "float32")).shape == (2, 11, 3)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
def test_padded_steps_are_masked(cell, mode):
    rng = np.random.default_rng(2)
    short = rng.random((1, 4, 3)).astype("float32")
    padded = np.concatenate([short, np.full((1, 3, 3), -1.0, "float32")], axis=1)
    model = zoo.get(cell, mode=mode, input_shape=(7, 3), mask_value=-1.0, units=(5, 4), dropout=0.0, bidirectional=True)
    unpadded = zoo.get(cell, mode=mode, input_shape=(4, 3), units=(5, 4), dropout=0.0, bidirectional=True)
    unpadded.set_weights(model.get_weights())
    got, want = np.asarray(model(padded)), np.asarray(unpadded(short))
    if mode == "many_to_many":
        got = got[:, :4]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_token_padding_is_masked():
    model = zoo.get("lstm", input_shape=(0,), vocabulary_size=12, dropout=0.0)
    np.testing.assert_allclose(
        np.asarray(model(np.array([[4, 5, 6, 0, 0]], "int32"))),
        np.asarray(model(np.array([[4, 5, 6]], "int32"))),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"mode": "sideways"}, r"Bad value for 'mode': expected 'many_to_one' \| 'many_to_many' \| 'one_to_many'"),
        ({"input_shape": (8, 8, 1)}, r"input_shape for mode many_to_one must be \(steps, features\)"),
        ({"mode": "one_to_many", "bidirectional": True}, r"bidirectional applies to many_to_one and many_to_many"),
        ({"mode": "one_to_many", "num_outputs": 3}, r"4 or more"),
        ({"vocabulary_size": 10, "input_shape": (5,), "mask_value": 0.0}, r"token inputs already mask id 0"),
        ({"units": ()}, r"at least one recurrent layer"),
        ({"dropout": 1.0}, r"'dropout' must be in \[0.0, 1.0\)"),
    ],
)
def test_bad_hyperparameters_raise_one_line(overrides, pattern):
    with pytest.raises(zoo.ZooError, match=pattern) as error:
        zoo.get("lstm", **overrides)
    assert "\n" not in str(error.value)


def test_greedy_decoder_refuses_other_models():
    with pytest.raises(zoo.ZooError, match="needs a one_to_many recurrent model"):
        recurrent.greedy_decoder(zoo.get("rnn"))


# === Data ===


def test_offline_sequence_datasets_have_the_documented_shapes():
    rows = sequences.digit_rows()
    assert rows.x_train.shape[1:] == (8, 8) and rows.task == "multiclass" and rows.num_outputs == 10
    video = sequences.digit_video(frames=6, videos=8)
    assert video.x_train.shape == (8, 6, 64) and video.y_train.shape == (8, 6)
    assert video.x_test.shape == (2, 6, 64) and video.extras["frames"].shape == (2, 6, 8, 8)
    captions = sequences.digit_captions()
    images, previous = captions.x_train
    assert images.shape[1:] == (8, 8, 1) and previous.shape[1] == 6 == captions.y_train.shape[1]
    # Teacher forcing: the input is the target shifted right behind START.
    assert (previous[:, 0] == sequences.START).all()
    np.testing.assert_array_equal(
        previous[:, 1:][captions.y_train[:, :-1] != sequences.END],
        captions.y_train[:, :-1][captions.y_train[:, :-1] != sequences.END],
    )
    assert sequences.decode_tokens(captions.y_test[:3], captions.vocabulary) == captions.extras["captions"][:3]
    forecast = sequences.stock_forecast(window=10, horizon=3)
    x, y = forecast.x_train, forecast.y_train
    # The target at day d is the return over the next three days: the sum of the next three inputs.
    np.testing.assert_allclose(y[:-3, 0, 0], x[1:-2, 0, 0] + x[2:-1, 0, 0] + x[3:, 0, 0], rtol=1e-4, atol=1e-5)
    assert forecast.extras["naive_mae"] == pytest.approx(np.abs(forecast.y_test).mean())
    assert forecast.task == "regression" and x.shape[1:] == (10, 1)


def test_padding_and_text_vectorization(tmp_path):
    ragged = [np.ones((n, 2)) * n for n in (3, 5, 4, 2, 6, 3, 5)]
    with pytest.raises(zoo.ZooError, match=r"different lengths \(2 to 6 steps\) and padding is off"):
        sequences.from_sequences(ragged, [0, 1, 0, 1, 0, 1, 0])
    padded = sequences.from_sequences(ragged, [0, 1, 0, 1, 0, 1, 0], pad=True, test_fraction=0.3)
    assert padded.mask_value == sequences.PAD_VALUE and padded.input_shape == (6, 2)
    every = np.concatenate([padded.x_train, padded.x_val, padded.x_test])
    assert sorted(6 - np.all(every == sequences.PAD_VALUE, axis=-1).sum(1)) == [2, 3, 3, 4, 5, 5, 6]
    text = sequences.vectorize_texts(
        ["a good film", "bad bad film"],
        [1, 0],
        ["good"],
        [1],
        ["awful"],
        [0],
        class_names=["neg", "pos"],
        name="t",
        source="s",
        sequence_length=4,
    )
    assert text.task == "binary" and text.x_train.shape == (2, 4) and text.x_train.dtype == np.int32
    assert "film" in text.vocabulary and text.x_test.tolist() == [[1, 0, 0, 0]]  # unknown word, then padding


def test_numpy_text_ids_match_text_vectorization():
    """The NumPy mapping JAX and PyTorch train with (and every served model applies) is Keras' layer's."""
    import sklearn.datasets

    # Real texts: scikit-learn's dataset descriptions, line by line (case, punctuation, numbers,
    # lines longer and shorter than the sequence), and lines that test what ASCII-only lowercasing,
    # ASCII-only whitespace and the tie order do to Unicode.
    real = [
        line
        for load in (sklearn.datasets.load_iris, sklearn.datasets.load_wine, sklearn.datasets.load_diabetes)
        for line in load().DESCR.splitlines()
    ]
    unicode = [
        "École ÉCOLE école Straße STRASSE İstanbul ΣΊΣΥΦΟΣ ﬁne café—CAFÉ «quoted» naïve",
        "no\xa0break em\u2003space file\x1cseparator next\x85line tab\tvertical\vform\ffeed\rreturn",
        "emoji 🙂🙂 zz yy xx [UNK] unk UNK '' \"\" ... -- __ ~~",
    ]
    # Whole descriptions too: texts far longer than the sequence.
    documents = [sklearn.datasets.load_linnerud().DESCR, sklearn.datasets.load_digits().DESCR]
    train, held_out = real[::2] + unicode[:2] + documents[:1], real[1::2] + unicode + documents
    for max_tokens, length in ((20000, 40), (60, 7), (3, 1)):
        layer = keras.layers.TextVectorization(max_tokens=max_tokens, output_sequence_length=length)
        layer.adapt(np.array(train, dtype=object))
        vocabulary = text_ids.adapt(text_ids.tokenize(train), max_tokens)
        assert vocabulary == [str(token) for token in layer.get_vocabulary()]
        for texts in (train, held_out):
            expected = np.asarray(layer(np.array(texts, dtype=object)))
            np.testing.assert_array_equal(text_ids.encode(text_ids.tokenize(texts), vocabulary, length), expected)
        # Each case happened: out-of-vocabulary ids, padding, truncation.
        assert (expected == 1).any() and (expected == 0).any()
        assert max(len(tokens) for tokens in text_ids.tokenize(held_out)) > length
    # Unicode stays as written: only A-Z is lowercased, only ASCII whitespace splits.
    vocabulary = text_ids.adapt(text_ids.tokenize(train), 20000)
    assert {"École", "école", "straße", "no\xa0break", "file\x1cseparator"} <= set(vocabulary)


# === Recipes: short runs on the real data ===


def _run(tracking_uri, name, options, settings=TINY):
    result = training.train(name, options, settings)
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    artifacts = {a.path for a in mlflow.MlflowClient(tracking_uri).list_artifacts(result.run_id)}
    return result, run, artifacts


def test_many_to_one_digit_rows(tracking_uri):
    result, run, artifacts = _run(tracking_uri, "lstm", {"epochs": 2})
    assert run.data.params["mode"] == "many_to_one" and run.data.params["model.mode"] == "many_to_one"
    assert run.data.params["model.input_shape"] == "8,8" and run.data.params["data.dataset"] == "digits"
    # Floor: 2 epochs of a tiny LSTM get 29 more of the 360 test digits right (8 points) than the
    # most frequent digit (about 11 %); an untrained network scores about 10 %.
    y_test = training.get_recipe("lstm").load_data(result.config).loaded.y_test
    correct = baselines.count(result.metrics["test_accuracy"], len(y_test))
    baselines.assert_beats(correct, baselines.majority_count(y_test), 29, len(y_test), "lstm on digit rows")
    assert {"examples.txt", "examples.png", "confusion_matrix.png", "learning_curve.png"} <= artifacts
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/examples.txt")
    assert text.count(" ok") + text.count("WRONG") == 16


def test_many_to_many_video_logs_accuracy_per_step(tracking_uri):
    result, run, artifacts = _run(
        tracking_uri, "gru", {"mode": "many_to_many", "epochs": 2, "videos": 200, "frames": 5, "examples": 3}
    )
    # Floor: 2 epochs label 8 % more of the 250 test frames right than always answering the most
    # frequent digit (about 13 %); 40 videos for 1 epoch stayed at chance (0.04).
    frames = training.get_recipe("gru").load_data(result.config).loaded.y_test.reshape(-1)
    correct = baselines.count(result.metrics["test_accuracy"], len(frames))
    margin = round(0.08 * len(frames))
    baselines.assert_beats(correct, baselines.majority_count(frames), margin, len(frames), "gru per-frame accuracy")
    history = mlflow.MlflowClient(tracking_uri).get_metric_history(result.run_id, "test_step_accuracy")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert run.data.params["model.step_units"] == "128,128" and run.data.params["data.dataset"] == "digit_video"
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/examples.txt")
    assert text.count("true:") == 3 and text.count("pred:") == 3
    assert "examples.png" in artifacts


def test_many_to_many_forecast_against_persistence(tracking_uri):
    # No bidirectional setting: the recipe itself must make a forecaster read forwards only.
    result, run, artifacts = _run(
        tracking_uri,
        "rnn",
        {"mode": "many_to_many", "dataset": "goog", "epochs": 1, "window": 12, "horizon": 2},
        {"units": "8"},
    )
    assert run.data.params["model.bidirectional"] == "False" and run.data.params["model.task"] == "regression"
    for name in ("test_mae", "test_naive_mae", "test_price_mae", "test_naive_price_mae"):
        assert result.metrics[name] > 0
    assert {"forecast.png", "examples.txt"} <= artifacts
    steps = mlflow.MlflowClient(tracking_uri).get_metric_history(result.run_id, "test_step_mae")
    assert len(steps) == 12


def test_one_to_many_captions_decoded_greedily_and_logged_decoder(tracking_uri):
    result, run, artifacts = _run(
        tracking_uri, "rnn", {"mode": "one_to_many", "epochs": 3}, {"units": "16", "encoder_units": "16"}
    )
    # Floor: 3 epochs decode the exact caption of 20 % more test digits than always answering the
    # most frequent caption (about 11 %); an untrained decoder gets none right (1 epoch: about 10 %).
    captions = training.get_recipe("rnn").load_data(result.config).loaded.extras["captions"]
    correct = baselines.count(result.metrics["test_exact_match"], len(captions))
    margin = round(0.2 * len(captions))
    baselines.assert_beats(correct, baselines.majority_count(captions), margin, len(captions), "caption exact match")
    assert {"examples.txt", "examples.png", "vocabulary.json"} <= artifacts
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/examples.txt")
    assert "test captions wrong" in text
    # The logged model is the greedy decoder, served as an image in and its caption out.
    vocabulary = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/vocabulary.json")["vocabulary"]
    images = sequences.digit_captions().extras["images"][:4]
    logged = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    captions = logged.predict(images)["caption"].tolist()
    assert captions == sequences.decode_tokens(recurrent.greedy_decode(result.model, images), vocabulary)
    decoder = mlflow.keras.load_model(f"runs:/{result.run_id}/model")
    assert decoder.output.shape[1:] == (6, len(vocabulary))


def test_tfds_imdb_reviews_and_mnist_with_mock_data(tracking_uri, tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=24, data_dir=str(tmp_path)):
        result, run, _ = _run(
            tracking_uri,
            "lstm",
            {"dataset": "imdb_reviews", "epochs": 1, "max_tokens": 50, "sequence_length": 12, "examples": 2},
        )
        assert run.data.params["model.vocabulary_size"] != "0" and run.data.params["model.task"] == "binary"
        assert run.data.params["model.input_shape"] == "12"
        text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/examples.txt")
        assert text.count(" ok") + text.count("WRONG") == 2
        vocabulary = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/vocabulary.json")
        assert vocabulary["sequence_length"] == 12 and vocabulary["vocabulary"][:2] == ["", "[UNK]"]
        mnist = sequences.mnist_rows()
    assert mnist.x_train.shape[1:] == (28, 28) and mnist.x_train.max() <= 1.0 and len(mnist.y_test) == 24


def test_user_text_csv_and_padded_sequences(tracking_uri, tmp_path):
    words = ["great", "fine", "awful", "dull", "superb", "bad"]
    rng = np.random.default_rng(0)
    rows = [{"review": " ".join(rng.choice(words, 5)), "label": ["neg", "pos"][i % 2]} for i in range(30)]
    pd.DataFrame(rows).to_csv(tmp_path / "reviews.csv", index=False)
    _, run, _ = _run(
        tracking_uri,
        "gru",
        {"data": str(tmp_path / "reviews.csv"), "text_column": "review", "epochs": 1, "sequence_length": 6},
    )
    assert run.data.params["data.task"] == "binary" and run.data.params["model.input_shape"] == "6"
    # Ragged sine waves (random phase and frequency), the target their value 3 steps after the last.
    lengths = rng.integers(6, 13, 300)
    phase, frequency = rng.uniform(0, 2 * np.pi, 300), rng.uniform(0.3, 0.6, 300)
    waves = [np.sin(f * np.arange(n + 3) + p) for n, f, p in zip(lengths, frequency, phase)]
    x = np.concatenate([w[:-3] for w in waves])[:, None]
    np.savez(tmp_path / "ragged.npz", x=x, y=np.array([w[-1] for w in waves]), lengths=lengths)
    result, run, _ = _run(
        tracking_uri, "rnn", {"data": str(tmp_path / "ragged.npz"), "pad": True, "epochs": 3}, {**TINY, "units": "16"}
    )
    assert run.data.params["model.mask_value"] == "-1.0" and run.data.params["model.task"] == "regression"
    # Floor: the better of two trivial forecasts, persistence (the last real step's value, test MAE
    # about 0.85) and a constant (the training targets' median, about 0.6, what an untrained network
    # outputs nearly does: 0.535 with no update applied); 3 epochs reach about 0.25.
    seq = training.get_recipe("rnn").load_data(result.config).loaded
    last = (seq.x_test[..., 0] != -1.0).sum(axis=1) - 1
    persistence = float(np.mean(np.abs(seq.x_test[np.arange(len(last)), last, 0] - seq.y_test[:, 0])))
    constant = float(np.mean(np.abs(np.median(seq.y_train) - seq.y_test)))
    trivial = min(persistence, constant)
    print(
        f"rnn regression: test MAE {result.metrics['test_mae']:.3f}, "
        f"persistence {persistence:.3f}, constant {constant:.3f}"
    )
    assert result.metrics["test_mae"] <= 0.6 * trivial, (result.metrics["test_mae"], persistence, constant)


# === Bad input: one line, exit 2, no run left RUNNING ===


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    lengths = np.array([3, 5, 4, 6, 2, 5, 3, 4])
    np.savez(tmp_path / "ragged.npz", x=rng.random((lengths.sum(), 2)), y=np.arange(8) % 2, lengths=lengths)
    pd.DataFrame({"text": ["", "!!!", "...", "?", "", "-", "", "!"], "label": [0, 1] * 4}).to_csv(
        tmp_path / "empty.csv", index=False
    )
    return tmp_path


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--data", "{files}/ragged.npz"], "have different lengths (2 to 6 steps) and padding is off: pass --pad"),
        (["--mode", "sideways"], "Bad value for 'mode': expected 'many_to_one' | 'many_to_many' | 'one_to_many'"),
        (["--data", "{files}/empty.csv"], "has an empty vocabulary"),
        (
            ["--mode", "many_to_many", "--dataset", "goog", "--horizon", "5000"],
            "Forecast horizon 5000 is longer than the series 'goog' (1047 days)",
        ),
        (["--mode", "many_to_many", "--dataset", "goog", "--horizon", "300"], "use --window + --horizon <= 104"),
        (["--mode", "one_to_many", "--dataset", "digits"], "Dataset digits trains --mode many_to_one, not one_to_many"),
        (["--dataset", "imdb_reviews", "--data-dir", "{files}/nothing"], "is not on disk in"),
        (
            ["--mode", "many_to_many", "--dataset", "goog", "--set", "bidirectional=true"],
            "--set bidirectional=true cannot forecast goog_forecast: the backward pass would read the values",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run_cli, tracking_uri, files, argv, pattern):
    started = time.perf_counter()
    status, out, err = run_cli("train", "lstm", *[a.format(files=files) for a in argv])
    assert status == 2, err
    assert pattern in err
    assert err.count("\n") == 1 and err.startswith("zoo: error: ")
    assert time.perf_counter() - started < 30
    assert not running_runs(tracking_uri)
