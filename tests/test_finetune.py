"""Fine-tuning from a logged model: `init_from` across a class and an alphabet change, `freeze`."""

import csv

import mlflow
import numpy as np
import pytest

import zoo


def _digit_folder(folder, classes, per_class):
    """A `--data` image folder of scikit-learn's 8x8 digit scans, one subfolder per class."""
    import sklearn.datasets
    from PIL import Image

    bunch = sklearn.datasets.load_digits()
    for label in classes:
        (folder / str(label)).mkdir(parents=True)
        for index, image in enumerate(bunch.images[bunch.target == label][:per_class]):
            Image.fromarray((image * 255 / 16).astype("uint8")).save(folder / str(label) / f"{index}.png")
    return folder


def _weights(model, names):
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.name in names}


def test_init_from_takes_matching_layers_builds_a_new_head_and_keeps_frozen_layers_fixed(tracking_uri, tmp_path):
    import keras

    from zoo import training

    tiny = {"filters": (4, 8), "dense_units": 16, "patience": 0, "verbose": 0}
    source = zoo.train("cnn", epochs=1, **tiny)  # ten digit classes
    folder = _digit_folder(tmp_path / "three", (0, 1, 2), 30)
    taken = [layer.name for layer in source.model.layers if layer.trainable_weights][:-1]
    at_epoch = {}

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            at_epoch[epoch] = _weights(self.model, taken)

    tiny.pop("verbose")
    result = training.train(
        "cnn",
        {"data": str(folder), "epochs": 2, "init_from": source.run_id, "freeze": "all-but-head", "freeze_epochs": 1},
        tiny,
        callbacks=[Watch()],
    )
    run = mlflow.MlflowClient().get_run(result.run_id)
    assert run.data.tags["zoo.init_from.run_id"] == source.run_id
    assert run.data.tags["zoo.init_from.new"] == "predictions"  # 3 classes, not 10: a new head
    assert run.data.tags["zoo.init_from.took"].split(",") == taken
    assert run.data.tags["zoo.frozen"].split(",") == taken
    before = _weights(source.model, taken)
    for name in taken:
        # Frozen through epoch 1: the source's weights exactly; trained again in epoch 2.
        assert all(np.array_equal(a, b) for a, b in zip(at_epoch[0][name], before[name])), name
    assert any(not np.array_equal(a, b) for name in taken for a, b in zip(at_epoch[1][name], before[name]))


@pytest.mark.large  # 170 s on the loaded 2-core machine: two OCR runs
def test_an_ocr_model_takes_a_new_alphabet_with_a_new_output_layer(tracking_uri, tmp_path):
    from PIL import Image

    from zoo.datasets import text_lines

    source = zoo.train("ocr", epochs=1, lines=(200, 40, 40), patience=0, verbose=0)
    folder = tmp_path / "letters"
    folder.mkdir()
    lines = text_lines.digit_lines(seed=1, lines=(60, 1, 1), lengths=(3, 5))
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "words"])
        for index, (pixels, text) in enumerate(zip(lines.x_train, lines.texts_train)):
            Image.fromarray((pixels[..., 0] * 255).astype("uint8")).save(folder / f"{index}.png")
            writer.writerow([f"{index}.png", "".join("abcdefghij"[int(d)] for d in text)])
    result = zoo.train("ocr", data=str(folder), epochs=1, init_from=f"runs:/{source.run_id}/model", verbose=0)
    tags = mlflow.MlflowClient().get_run(result.run_id).data.tags
    assert "characters" in tags["zoo.init_from.new"].split(",")
    assert {"block1_conv1", "block1_conv2", "bilstm1"} <= set(tags["zoo.init_from.took"].split(",")), tags[
        "zoo.init_from.took"
    ]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"freeze": "2", "freeze_epochs": 1}, "give `init_from` too"),
        ({"init_from": "x.keras", "freeze": "some", "freeze_epochs": 1}, "`freeze` takes a number"),
        ({"init_from": "x.keras", "freeze": "2", "freeze_epochs": 5, "epochs": 5}, "below `epochs`"),
        ({"freeze_epochs": 2}, "`freeze_epochs` needs `freeze`"),
        ({"init_from": "nothing-here"}, "is not a .keras file, a run id"),
    ],
)
def test_bad_fine_tuning_options_are_refused_in_one_line(options, words, tracking_uri):
    with pytest.raises(zoo.ZooError, match=words.replace("(", r"\(")):
        zoo.train("mlp", dataset="iris", verbose=0, **options)
