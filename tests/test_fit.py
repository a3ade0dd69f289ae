"""Did it learn? The trivial baseline of every run, early stopping on the recipe's metric, budgets
that follow the data, and the user's data checked before TensorFlow, Keras and MLflow load."""

import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest

from tests.conftest import REPO, running_runs
from zoo.training import baselines, budgets

# === The trivial baselines (NumPy only) ===


def test_majority_class_and_mean_baselines():
    assert baselines.majority_accuracy([0, 1, 1, 1], [1, 0, 1, 1]) == 0.75
    # One-hot rows and per-step labels read as class ids.
    assert baselines.majority_accuracy(np.eye(3)[[2, 2, 0]], np.eye(3)[[2, 1]]) == 0.5
    assert baselines.majority_accuracy([[1, 1], [1, 0]], [[1, 1]]) == 1.0
    assert baselines.mean_error([1.0, 3.0], [2.0, 4.0]) == 1.0
    assert baselines.mean_error([1.0, 3.0], [4.0], squared=True) == 4.0
    assert baselines.most_frequent_row_match([[1, 2], [1, 2], [3, 4]], [[1, 2], [3, 4]]) == 0.5


def test_default_baseline_reads_twins_and_forecast_naives():
    twin = baselines.default(None, {"test_char_error_rate": 0.5, "test_baseline_char_error_rate": 0.9}, None)
    assert twin.metric == "test_char_error_rate" and twin.value == 0.9
    assert twin.beaten_by(0.5) and not twin.beaten_by(0.95) and not twin.beaten_by(0.9 + 1e-9)
    forecast = baselines.default(
        None,
        {"test_mae": 1.4, "test_persistence_mae": 1.13, "test_seasonal_naive_mae": 2.0, "test_accuracy": 0.1},
        "test_mae",
    )
    assert (forecast.name, forecast.value) == ("persistence", 1.13) and not forecast.beaten_by(1.4)
    assert "persistence" in forecast.warning({"test_mae": 1.4})
    # Ties are no win, and a missing or NaN figure never beats anything.
    accuracy = baselines.Baseline("test_accuracy", 0.85, "majority class")
    assert not accuracy.beaten_by(np.float32(0.85)) and not accuracy.beaten_by(float("nan"))


def test_budget_follows_the_training_rows():
    budget = budgets.Budget(steps=2500)
    # The OCR digit default (4,000 lines of 32) keeps its 20 epochs and patience 5 ...
    assert budget.choose(4000, 32, 20, 5) == (20, 5)
    # ... 1,050 captcha lines get enough epochs for the same steps, and a patience that follows.
    assert budget.choose(1050, 32, 20, 5) == (76, 19)
    assert budget.choose(10, 32, 20, 0) == (200, 0)


def test_budget_is_printed_once_and_explicit_epochs_and_patience_win(capsys):
    from zoo.recipes.ocr import OCRConfig, OCRRecipe

    budget = OCRRecipe.budget
    config, text = budgets.apply(budget, OCRConfig(data="lines"), 1050, set(), "ocr")
    assert (config.epochs, config.patience) == (76, 19) and "2500 optimizer steps" in text
    assert capsys.readouterr().err.count("\n") == 1
    config, text = budgets.apply(budget, OCRConfig(data="lines", epochs=20), 1050, {"epochs"}, "ocr")
    assert (config.epochs, config.patience, text) == (20, 5, None)
    config, _ = budgets.apply(budget, OCRConfig(data="lines", patience=3), 1050, {"patience"}, "ocr")
    assert (config.epochs, config.patience) == (76, 3)
    capsys.readouterr()
    # The digit default keeps its epochs: nothing printed, nothing changed.
    assert budgets.apply(budget, OCRConfig(), 4000, set(), "ocr")[1] is None and not capsys.readouterr().err


# === Early stopping on the recipe's metric, with a warm-up guard ===


def _stopper(monitors, patience, warm_up=None):
    import keras

    from zoo.training import stopping

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    callback = stopping.MetricEarlyStopping(monitors, patience, warm_up)
    callback.set_model(model)
    model.stop_training = False  # what `fit` sets before the first epoch
    callback.on_train_begin()
    return callback, model


def test_early_stopping_waits_out_the_all_blank_start_and_keeps_the_best_epoch():
    callback, model = _stopper(["val_char_error_rate"], patience=2, warm_up="val_read_share")
    # Ten epochs of blanks (CER 1.0, read share 0) while the loss rises: no stop.
    for epoch in range(10):
        callback.on_epoch_end(epoch, {"val_loss": 10.0 + epoch, "val_char_error_rate": 1.0, "val_read_share": 0.0})
        assert not model.stop_training
    callback.on_epoch_end(10, {"val_loss": 30.0, "val_char_error_rate": 0.6, "val_read_share": 0.5})
    model.layers[0].kernel.assign([[7.0]])
    callback.on_epoch_end(11, {"val_loss": 31.0, "val_char_error_rate": 0.7, "val_read_share": 0.9})
    assert not model.stop_training and callback.best_epoch == 10 and callback.monitor == "val_char_error_rate"
    callback.on_epoch_end(12, {"val_loss": 32.0, "val_char_error_rate": 0.8, "val_read_share": 0.9})
    assert model.stop_training
    callback.on_train_end()
    assert float(model.layers[0].kernel.numpy()[0, 0]) != 7.0  # epoch 10's weights restored


def test_early_stopping_falls_back_to_the_loss_and_breaks_ties_with_it():
    callback, model = _stopper(["val_mae"], patience=1)
    callback.on_epoch_end(0, {"val_loss": 2.0})
    assert callback.monitor == "val_loss"
    callback, model = _stopper(["val_accuracy"], patience=2)
    for epoch, loss in enumerate([1.0, 0.8, 0.9]):
        callback.on_epoch_end(epoch, {"val_accuracy": 0.9, "val_loss": loss})
    # Equal accuracy: the epoch with the lower loss is the best one.
    assert callback.best_epoch == 1 and not model.stop_training


def test_the_learning_rate_halves_on_each_plateau_the_early_stop_counts(run_cli, tmp_path):
    import keras

    from zoo.training import stopping

    callback, model = _stopper(["val_accuracy"], patience=6, warm_up="val_read_share")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    plateau = stopping.PlateauLearningRate(callback, patience=2)
    plateau.set_model(model)
    rates = []
    # Warm-up epochs (read share 0) count for neither; then a best epoch and five without a better one.
    scores = [(0.1, 0.0), (0.1, 0.0), (0.1, 0.0), (0.5, 1.0), (0.4, 1.0), (0.5, 1.0), (0.3, 1.0), (0.2, 1.0)]
    for epoch, (accuracy, read) in enumerate(scores):
        logs = {"val_accuracy": accuracy, "val_loss": 1.0, "val_read_share": read}
        callback.on_epoch_end(epoch, logs)
        plateau.on_epoch_end(epoch, logs)
        rates.append(logs["learning_rate"])
    np.testing.assert_allclose(rates, [0.01, 0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.0025], rtol=1e-6)
    # A better epoch starts the count again: no halving on it.
    logs = {"val_accuracy": 0.9, "val_loss": 1.0, "val_read_share": 1.0}
    callback.on_epoch_end(8, logs)
    plateau.on_epoch_end(8, logs)
    assert callback.wait == 0 and logs["learning_rate"] == pytest.approx(0.0025)
    # It counts what early stopping counts: without early stopping there is nothing to count.
    status, _, err = run_cli("train", "mlp", "--patience", "0", "--set", "lr_patience=3")
    assert status == 2 and err.count("\n") == 1 and "--patience is 0" in err


# === A run that loses to its baseline ===


def _noise_table(path, rows=200):
    """A table whose label does not depend on its features: nothing beats the majority class."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    y = rng.random(rows) < 0.15
    lines = ["a,b,c,y"] + [f"{a:.4f},{b:.4f},{c:.4f},{'yes' if t else 'no'}" for (a, b, c), t in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_run_that_loses_to_its_baseline_says_so_and_require_learned_exits_1(run_cli, tracking_uri, tmp_path):
    table = _noise_table(tmp_path / "noise.csv")
    output = tmp_path / "out"
    argv = ["train", "mlp", "--data", table, "--target", "y", "--epochs", "2", "--output", str(output)]
    status, out, err = run_cli(*argv, "--require-learned")
    assert status == 1, err
    warnings = [line for line in err.splitlines() if "trivial baseline" in line]
    assert len(warnings) == 2 and warnings[0].startswith("zoo: warning: ") and "try more --epochs" in warnings[0]
    assert "--require-learned" in warnings[1]
    run = mlflow.search_runs(output_format="list", order_by=["attributes.start_time DESC"])[0]
    assert run.data.tags["zoo.learned"] == "false" and run.data.tags["zoo.baseline"] == "majority class"
    assert "Did not learn" in run.data.tags["mlflow.note.content"]
    assert run.data.metrics["test_baseline_accuracy"] == pytest.approx(run.data.metrics["test_accuracy"], abs=0.2)
    assert "require_learned" not in run.data.params and "dataset" not in run.data.params
    assert not running_runs(tracking_uri)

    status, out, err = run_cli("compare")
    # NO is a cell of its own, the last of a row when `learned` is the table's last column.
    assert (
        status == 0 and "learned" in out.splitlines()[0] and any("NO" in line.split() for line in out.splitlines())
    ), out
    for reference in (run.info.run_id, str(output)):
        status, out, err = run_cli("predict", reference, table)
        assert "did not beat the trivial baseline" in err, (reference, err)


# === The user's data, checked before TensorFlow, Keras and MLflow load ===

# Any import of these fails: the command must end with the data's one-line error before them.
_BLOCKED = """
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "mlflow"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Blocked())
from zoo.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without_heavy_imports(*argv, cwd):
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _ocr_folder(folder, rows):
    from PIL import Image

    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.full((20, 60), 200, dtype="uint8")).save(folder / f"l{index}.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return str(folder)


@pytest.mark.parametrize(
    "case, message",
    [
        ("ocr_column", "has no column 'words'"),
        ("ocr_missing", "names image 'ghost.png', which is not in"),
        ("ocr_empty", "an empty file (0 bytes)"),
        ("mlp_target", "Target column 'label' is not in"),
        ("cnn_one_class", "has a single class folder ('cats')"),
    ],
)
def test_bad_data_fails_before_tensorflow_keras_and_mlflow_load(tmp_path, case, message):
    if case == "ocr_column":
        argv = ["ocr", "--data", _ocr_folder(tmp_path / "d", ["filename,text", "l0.png,ab"])]
    elif case == "ocr_missing":
        argv = ["ocr", "--data", _ocr_folder(tmp_path / "d", ["filename,words", "l0.png,ab", "ghost.png,cd"])]
    elif case == "ocr_empty":
        argv = ["ocr", "--data", _ocr_folder(tmp_path / "d", ["filename,words", "l0.png,ab", "empty.png,cd"])]
    elif case == "mlp_target":
        table = _noise_table(tmp_path / "t.csv", rows=20)
        argv = ["mlp", "--data", table, "--target", "label"]
    else:
        _ocr_folder(tmp_path / "photos", ["filename,words"])
        (tmp_path / "photos" / "cats").mkdir()
        os.rename(tmp_path / "photos" / "l0.png", tmp_path / "photos" / "cats" / "l0.png")
        argv = ["cnn", "--data", str(tmp_path / "photos")]
    result = _without_heavy_imports("train", *argv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("zoo: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "blocked" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_ocr_reading_variety_is_zero_for_blanks_and_one_guess_for_every_line():
    from zoo.recipes.ocr import reading_variety

    assert reading_variety(["", "", ""]) == 0
    assert reading_variety(["28cy", "28cy", "", "28cy"]) == 0
    assert reading_variety(["28cy", "b3x", "28cy"]) == 0.5
    assert reading_variety(["a", "b", "c"]) == 1.0
