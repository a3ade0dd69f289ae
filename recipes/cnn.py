"""CNN on images: handwritten digits offline, MNIST-family datasets from tfds, or a folder of images.

Technique: convolutional neural network (local filters shared across positions, pooling), with the
Keras-quickstart MLP (`--model mlp_image`) as the baseline to compare it with on the same images.
Dataset: scikit-learn's 1,797 real 8x8 handwritten digit scans by default, offline;
`--dataset mnist` (or fashion_mnist, cifar10, any tensorflow-datasets image-classification name)
when the data is in the tfds data directory; `--data FOLDER` for one subfolder of images per class.
What it shows: where the classifier fails (confusion matrix, the worst misclassified test images,
per-class precision and recall), and a logged model that predicts on raw pixels (0-255), so
`zoo predict RUN_ID digit.png` reads a photo of a digit.

    zoo train cnn
    zoo train cnn --model mlp_image
    zoo train cnn --dataset mnist --data-dir ~/tensorflow_datasets --epochs 10
    zoo train cnn --data photos/ --image-size 64,64 --set filters=32,64,128
"""

import dataclasses
import functools
import json
import os
import typing

import numpy as np

from zoo import registry, tracking, training
from zoo.datasets import images
from zoo.errors import ZooError
from zoo.training import devices

IMAGE_TASK = "image_classification"


@dataclasses.dataclass
class Predictions:
    """What the evaluation computed on the test images, for the artifacts.

    Attributes:
        probabilities: (images, classes) predicted probabilities.
        predicted: the predicted class of each test image.
        per_class: per class, (precision, recall, f1, support) arrays.
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    per_class: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclasses.dataclass
class CNNConfig(training.RecipeConfig):
    """Options of the CNN recipe.

    Args:
        dataset: digits (offline default), mnist, fashion_mnist, cifar10, or any tensorflow-datasets
            image-classification name.
        data: folder of images with one subfolder per class (or train/ and test/ holding them);
            overrides --dataset.
        data_dir: tensorflow-datasets data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets).
        download: download a tensorflow-datasets dataset that is not on disk when its servers answer
            (--no-download forbids it).
        model: the image classifier to train: cnn, or mlp_image to compare the quickstart MLP.
        image_size: HEIGHT,WIDTH to resize images to (default: the size they share, else 64,64).
        color_mode: auto, grayscale or rgb, for --data folders (auto: grayscale if every image is).
        skip_corrupt: leave unreadable images of --data out with a warning instead of stopping.
        validation_fraction: share of the training images held out for early stopping.
        test_fraction: share held out for the test metrics where the data has no test split.
        worst_images: how many of the worst misclassified test images the logged grid shows.
    """

    epochs: int = 100
    patience: int = 10
    dataset: str = "digits"
    data: str | None = None
    data_dir: str | None = None
    download: bool = True
    model: str = "cnn"
    image_size: tuple[int, ...] = ()
    color_mode: typing.Literal["auto", "grayscale", "rgb"] = "auto"
    skip_corrupt: bool = False
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    worst_images: int = 25


@training.register_recipe
class CNNRecipe(training.Recipe):
    name = "cnn"
    technique = "cnn"
    summary = "CNN (or the quickstart MLP) on digits, tfds image datasets or a folder of images."
    model = "cnn"
    Config = CNNConfig

    # === Data ===
    def check_data(self, config):
        if config.data:
            from zoo.datasets import images

            images.check_folder(config.data)

    def load_data(self, config):
        import mlflow

        if config.worst_images < 0:
            raise ZooError(f"`worst_images` must be 0 or more. Received: {config.worst_images}")
        data = images.load(
            config.dataset,
            seed=config.seed,
            data_dir=config.data_dir,
            download=config.download,
            folder=config.data,
            image_size=config.image_size or None,
            validation_fraction=config.validation_fraction,
            test_fraction=config.test_fraction,
            color_mode=config.color_mode,
            skip_corrupt=config.skip_corrupt,
        )
        spec = {**data.spec(), "task": "multiclass", "pixel_range": f"0-{images.PIXEL_MAX:g} (raw)"}
        # A folder or tfds dataset above ZOO_STREAM_BYTES is not held: its images are decoded batch by batch.
        streamed = isinstance(data.x_train, images.StreamedImages)
        mlflow_datasets = [
            (
                x.mlflow_dataset(y, _dataset_source(data), f"{data.name}-{split}")
                if streamed
                else mlflow.data.from_numpy(
                    x, targets=y, source=tracking.dataset_source(_dataset_source(data)), name=f"{data.name}-{split}"
                ),
                context,
            )
            for split, context, x, y in (
                ("train", "training", data.x_train, data.y_train),
                ("validation", "validation", data.x_val, data.y_val),
                ("test", "testing", data.x_test, data.y_test),
            )
        ]
        # Raw pixels (0-255) are tf.data on TensorFlow and NumPy batches on JAX and PyTorch, which
        # then train without TensorFlow: streamed images decode batch by batch in either (a folder
        # off TensorFlow through Pillow, in a `Stream`; tfds needs TensorFlow whatever the backend).
        splits = {
            name: _streamed_split(x, y, seed)
            if streamed
            else training.from_arrays((x * images.PIXEL_MAX).astype("float32"), y)
            for name, x, y, seed in (
                ("train", data.x_train, data.y_train, config.seed),
                ("validation", data.x_val, data.y_val, None),
                ("test", data.x_test, data.y_test, None),
            )
        }
        return training.Data(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            num_train=len(data.x_train),
            # The model takes raw pixels, as read from an image file: that is what its signature shows.
            example_inputs=(data.x_test[:5] * images.PIXEL_MAX).astype("float32"),
            spec=spec,
            mlflow_datasets=mlflow_datasets,
            loaded=data,
            streamed=streamed,
        )

    def explain_input_error(self, data, error):
        # A streamed folder's image that turned unreadable during the run fails inside tf.data with
        # TensorFlow's error, which names no file (off TensorFlow, Pillow's reader names it itself).
        if not data.streamed or not type(error).__module__.startswith("tensorflow"):
            return None
        for x in (data.loaded.x_train, data.loaded.x_val, data.loaded.x_test):
            found = x.unreadable() if isinstance(x, images.FolderImages) else None
            if found is not None:
                return found
        return None

    # === Model ===
    def model_name(self, config):
        card = registry.info(config.model)
        if IMAGE_TASK not in card.tasks:
            image_models = [c.name for c in registry.list_models(task=IMAGE_TASK)]
            raise ZooError(
                f"Model '{config.model}' is not an image classifier; `model` takes one of {', '.join(image_models)}."
            )
        return config.model

    def model_overrides(self, config, data):
        spec = data.spec
        return {"input_shape": tuple(spec["shape"]), "num_classes": spec["num_classes"]}

    # === Evaluate ===
    def evaluate(self, model, data, config, prepared=None):
        from sklearn.metrics import precision_recall_fscore_support

        metrics = super().evaluate(model, data, config).metrics
        test = training.batch(data.test, config.batch_size, devices.replicas(model), streamed=data.streamed)
        probabilities = model.predict(test, verbose=0)
        truth = data.loaded.y_test
        predicted = np.argmax(probabilities, axis=1)
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, predicted, labels=range(data.spec["num_classes"]), zero_division=0
        )
        metrics.update(
            test_macro_precision=float(precision.mean()),
            test_macro_recall=float(recall.mean()),
            test_macro_f1=float(f1.mean()),
        )
        return training.Evaluation(metrics, Predictions(probabilities, predicted, (precision, recall, f1, support)))

    # === Log ===
    def log_artifacts(self, model, data, config, evaluation, prepared=None):
        import mlflow

        from zoo import plots

        source, outputs = data.loaded, evaluation.outputs
        names = source.class_names
        truth, predicted = source.y_test, outputs.predicted
        tracking.log_figure(plots.confusion_matrix(truth, predicted, names), "confusion_matrix.png")

        precision, recall, f1, support = outputs.per_class
        per_class = {
            str(name): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)
        }
        mlflow.log_dict(per_class, "per_class_metrics.json")
        mlflow.log_text(_report(per_class), "per_class_metrics.txt")

        # Worst first: the test images whose true class got the lowest probability, among the wrong ones.
        probabilities = outputs.probabilities
        true_probability = probabilities[np.arange(len(truth)), truth]
        wrong = np.flatnonzero(predicted != truth)
        worst = wrong[np.argsort(true_probability[wrong])][: config.worst_images]
        if len(worst):
            titles = [
                f"true {names[truth[i]]}\npred {names[predicted[i]]} {probabilities[i, predicted[i]]:.2f}"
                for i in worst
            ]
            figure = plots.image_grid(source.x_test[worst], titles=titles, size=1.4)
            tracking.log_figure(figure, "worst_misclassified.png")
        else:
            mlflow.log_text("No test image was misclassified.\n", "worst_misclassified.txt")

        if config.output:
            # `zoo predict FOLDER` reads the class names from here; `training.save` writes the model.
            try:
                os.makedirs(config.output, exist_ok=True)
            except OSError as error:
                raise ZooError(f"Cannot create the `output` folder {config.output}: {error.strerror}.") from None
            with open(os.path.join(config.output, "labels.json"), "w") as handle:
                json.dump({"class_names": [str(n) for n in names], "dataset": source.name}, handle, indent=2)

    def log_model(self, model, data):
        spec = data.spec
        # The class names travel with the model, so `zoo predict runs:/...` can print them.
        metadata = {
            "class_names": spec["class_names"],
            "image_shape": spec["shape"],
            "dataset": spec["name"],
            "pixel_max": images.PIXEL_MAX,
        }
        return tracking.log_model(model, data.example_inputs, metadata=metadata)


def _streamed_split(x, y, seed):
    """A streamed split: `tf.data` that decodes on the fly, or off TensorFlow a folder's `Stream`."""
    if training.tensorflow_input() or not isinstance(x, images.FolderImages):
        return images.to_dataset(x, y, seed=seed)
    # Pass e is drawn from (seed, e) alone (the held-out splits keep the listing's order).
    return training.Stream(functools.partial(x.batches, y, seed), len(x))


def _dataset_source(data):
    """A source MLflow can resolve: `tensorflow-datasets:mnist` reads as an unknown URI scheme."""
    if data.source.startswith("tensorflow-datasets:"):
        return os.path.join(data.details.get("data_dir", ""), data.name)
    return data.source


def _report(per_class):
    width = max(8, *(len(name) for name in per_class))
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for name, row in per_class.items():
        lines.append(
            f"{name:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:5.3f}  {row['support']:7d}"
        )
    return "\n".join(lines) + "\n"
