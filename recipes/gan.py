"""GAN on images: a DCGAN learns to generate digits (or clothes, or your images), scored as it learns.

Technique: generative adversarial network (DCGAN; class-conditional by default, so a trained model
draws the class you ask for).
Dataset: scikit-learn's 1,797 real 8x8 handwritten digits by default, offline; `--dataset mnist` or
`fashion_mnist` from tensorflow-datasets when their data are on disk; `--data DIR` for a folder with
one subfolder of images per class.
What it shows: each epoch logs the generator and discriminator losses, a grid of samples from a fixed
latent batch (an MLflow image with the epoch as step, so epochs compare) and a quality score from a
classifier of the zoo trained once on the real images and cached: the share of generated images it
labels with confidence >= 0.9, the entropy of its predicted-class histogram (mode coverage; ln 10 =
2.303 is every digit equally often), the spread of the images within a class relative to the real
ones (a generator that draws one image per class scores well on the first two, not here), the
Frechet distance between real and generated images in its feature space, and (conditional) the
share drawn as the class that was asked for.

    zoo train gan
    zoo train gan --dataset mnist --epochs 30 --set generator_filters=64
    zoo train gan --data my_images/ --image-size 32,32 --no-conditional
    zoo generate RUN_ID --n 64 --label 7 --out sevens.png
"""

import dataclasses
import hashlib
import json
import os
import re
import typing

import numpy as np

from zoo import plots, tracking, training
from zoo.errors import ZooError
from zoo.training import devices

CONFIDENCE = 0.9
# Bump when the judge's training changes, so that stale cached classifiers are not reused.
JUDGE_VERSION = 1
# Real images whose judge features make the Frechet reference (more adds little but time).
REFERENCE_LIMIT = 10000


@dataclasses.dataclass
class GANConfig(training.RecipeConfig):
    """Options of the GAN recipe.

    Args:
        dataset: digits (offline default), mnist, fashion_mnist or another tensorflow-datasets image
            dataset (its data must already be on disk).
        data: a folder with one subfolder of images per class; overrides --dataset.
        data_dir: tensorflow-datasets data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets).
        download: download a tensorflow-datasets dataset that is not on disk when its servers answer
            (--no-download forbids it).
        image_size: HEIGHT,WIDTH to resize the images to; needed for a folder whose images differ in size.
        conditional: train the class-conditional GAN (labels in both networks), so that
            `zoo generate --label K` draws class K.
        samples: generated images scored at the end of each epoch (and at the end of training).
        judge_epochs: maximum epochs of the judging classifier, trained once per dataset and cached
            under $ZOO_CACHE_DIR (default ~/.cache/zoo).
    """

    epochs: int = 80
    batch_size: int = 32
    patience: int = 0
    dataset: str = "digits"
    data: str | None = None
    data_dir: str | None = None
    download: bool = True
    image_size: tuple[int, ...] = ()
    conditional: bool = True
    samples: int = 1000
    judge_epochs: int = 40


@dataclasses.dataclass
class GANData:
    """What the GAN's loader read.

    Attributes:
        images: the `ImageData` (class names, the test images of the final score).
        x: the training images (train + validation), which the per-epoch score compares with.
        key: the cache key of the dataset's judge.
    """

    images: typing.Any
    x: np.ndarray
    key: str


@dataclasses.dataclass
class Judging:
    """What `prepare` computes once for the quality callback, the evaluation and the artifacts.

    Attributes:
        judge: the `Judge` of the dataset.
        reference: its features of the training images (`Judge.reference`).
    """

    judge: "Judge"
    reference: dict[str, typing.Any]


@training.register_recipe
class GANRecipe(training.Recipe):
    name = "gan"
    technique = "gan"
    summary = "DCGAN (conditional by default) on digits, MNIST, Fashion-MNIST or an image folder."
    model = "gan"
    Config = GANConfig
    # TensorFlow's grappler remapper fuses each discriminator convolution with its bias and
    # LeakyReLU, but the gradient of LeakyReLU still reads the unfused bias output: the pass fails
    # ("E0000 ... remapper failed: ... LeakyReluGrad ... missing node ... BiasAdd") and TensorFlow
    # logs that error on every run before skipping it. Not running it gives the same graph, silently.
    graph_passes_off = ("remapping",)
    # Adversarial losses do not measure progress: no early stopping, the quality score is logged.
    monitor = None
    # Ranks runs (`zoo compare`, `--register`): lower is better.
    main_metric = "test_frechet_distance"

    # === Data ===
    def check_data(self, config):
        if config.data:
            from zoo.datasets import images

            images.check_folder(config.data)

    def load_data(self, config):
        from zoo.datasets import images

        if config.samples < 10:
            raise ZooError(
                f"`samples` must be at least 10 to score a batch of generated images. Received: {config.samples}"
            )
        if config.judge_epochs < 1:
            raise ZooError(f"`judge_epochs` must be at least 1. Received: {config.judge_epochs}")
        if config.data and not config.image_size and os.path.isdir(config.data):
            _check_one_size(config.data)
        loaded = images.load(
            config.dataset,
            seed=config.seed,
            data_dir=config.data_dir,
            download=config.download,
            folder=config.data,
            image_size=tuple(config.image_size) or None,
        )
        _check_images(loaded, config.data or config.dataset)
        # The GAN has no use for a validation split: it trains on train + validation; the test split
        # stays out, as the reference of the final Frechet distance.
        x = np.concatenate([loaded.x_train, loaded.x_val])
        y = np.concatenate([loaded.y_train, loaded.y_val])
        spec = {**loaded.spec(), "conditional": config.conditional, "gan_train_rows": len(x)}
        return training.Data(
            # tf.data on TensorFlow, NumPy batches on JAX and PyTorch (no TensorFlow import).
            train=training.from_arrays(x, y),
            validation=None,
            test=None,
            num_train=len(x),
            example_inputs=None,
            spec=spec,
            mlflow_datasets=_mlflow_datasets(loaded),
            loaded=GANData(images=loaded, x=x, key=_dataset_key(loaded, config)),
        )

    # === Model ===
    def model_overrides(self, config, data):
        loaded = data.loaded.images
        height, width, _ = loaded.shape
        # As many stride-2 stages as the size allows: 8x8 -> 2 (from 2x2), 28x28 -> 2 (from 7x7),
        # 32x32 and up -> 3.
        limit = 2 if min(height, width) < 32 else 3
        upsamplings = 0
        while upsamplings < limit and height % 2 ** (upsamplings + 1) == 0 and width % 2 ** (upsamplings + 1) == 0:
            upsamplings += 1
        return {
            "image_shape": loaded.shape,
            "num_classes": loaded.num_classes if config.conditional else 0,
            "upsamplings": upsamplings,
            "seed": config.seed,
        }

    # === Train: the per-epoch quality score ===
    def prepare(self, model, data, config):
        import keras

        judge = load_judge(data.loaded.images, data.loaded.key, config.judge_epochs)
        # Training the judge (a first run) or not (a cached one) must not change this run's random
        # stream: start it again from the run's seed either way.
        keras.utils.set_random_seed(config.seed)
        return Judging(judge, judge.reference(data.loaded.x))

    def callbacks(self, model, data, config, prepared=None):
        return [quality_callback(model, prepared.judge, prepared.reference, config)]

    def epoch_metrics(self, model, data, config):
        # The quality callback adds the judge's scores to each epoch's logs (`zoo tune` optimizes
        # frechet_distance, measured against the training images, by default).
        scores = ["confident_share", "class_entropy", "within_class_diversity", "frechet_distance"]
        if config.conditional:
            scores.append("label_accuracy")
        return sorted(super().epoch_metrics(model, data, config) + scores)

    # === Evaluate ===
    def evaluate(self, model, data, config, prepared=None):
        loaded, judge = data.loaded.images, prepared.judge
        # A latent batch the epochs never saw, against the held-out test images.
        labels = _balanced_labels(config.samples, model.num_classes) if model.conditional else None
        generated = model.generate(config.samples, labels=labels, seed=config.seed + 2)
        scores = judge.score(generated, judge.reference(loaded.x_test), labels)
        metrics = {f"test_{name}": value for name, value in scores.items()}
        metrics["judge_test_accuracy"] = judge.accuracy
        # The generated images are what the artifacts show.
        return training.Evaluation(metrics, generated)

    def baseline(self, model, data, config, evaluation, prepared=None):
        # An untrained GAN of the same size, scored as the trained one: what training added.
        untrained = type(model).from_config(model.get_config())
        if not untrained.built:
            untrained.build(None)
        labels = _balanced_labels(config.samples, model.num_classes) if model.conditional else None
        generated = untrained.generate(config.samples, labels=labels, seed=config.seed + 2)
        judge = prepared.judge
        scores = judge.score(generated, judge.reference(data.loaded.images.x_test), labels)
        return training.Baseline(
            self.main_metric, scores["frechet_distance"], "untrained network of the same size", "more --epochs"
        )

    # === Log ===
    def log_artifacts(self, model, data, config, evaluation, prepared=None):
        import mlflow

        judge = prepared.judge
        shown = evaluation.outputs[:64]
        probabilities, _ = _predict_both(judge, shown)
        names = data.loaded.images.class_names
        titles = [f"{names[int(p.argmax())]} {p.max():.2f}" for p in probabilities]
        tracking.log_figure(plots.image_grid(shown, titles=titles), "samples.png")
        mlflow.log_dict(judge.describe(), "judge.json")

    def log_model(self, model, data):
        from zoo import serving

        # Served as a sampler: rows of label (when conditional) and seed in, images (0-255) out.
        adapter = serving.Generator(latent_dim=model.latent_dim, num_classes=model.num_classes)
        names = data.loaded.images.class_names if model.conditional else []
        return tracking.log_model(
            model, adapter.example(), metadata={"class_names": [str(n) for n in names]}, adapter=adapter
        )


# === The judge: a classifier of the zoo trained on the real images ===


class Judge:
    """A classifier trained on the real images, and the quality score it gives generated ones.

    Attributes:
        classifier: the Keras classifier (images in [0, 1] -> class probabilities).
        features: the same network up to the layer before its softmax (the Frechet feature space).
        accuracy: its accuracy on the real test split.
        model_name: the zoo model it was built from.
        path: where it is cached.
    """

    def __init__(self, classifier, accuracy, model_name, path):
        import keras

        self.classifier = classifier
        head = (
            classifier.get_layer("predictions")
            if "predictions" in [layer.name for layer in classifier.layers]
            else classifier.layers[-1]
        )
        self.features = keras.Model(classifier.inputs[0], head.input)
        self.accuracy = float(accuracy)
        self.model_name = model_name
        self.path = path

    def describe(self):
        return {
            "model": self.model_name,
            "test_accuracy": self.accuracy,
            "cache": self.path,
            "confidence_threshold": CONFIDENCE,
        }

    def reference(self, real):
        """What generated images are compared with: the judge's features of real images.

        Returns:
            {"moments": (mean, covariance), the Frechet reference; "spread": per class (as the
            judge labels them), the mean distance of a real image's features to its class mean}.
        """
        probabilities, features = _predict_both(self, real[:REFERENCE_LIMIT])
        return {
            "moments": _moments(features),
            "spread": _class_spread(features, probabilities.argmax(axis=1), probabilities.shape[1]),
        }

    def score(self, generated, reference, labels=None):
        """Quality of `generated` images (N, H, W, C) in [0, 1].

        Returns:
            {"confident_share": share with top probability >= 0.9, "class_entropy": entropy (nats)
            of the histogram of predicted classes (mode coverage across classes),
            "within_class_diversity": the spread of the generated images of a class relative to that
            of the real ones, averaged over classes (1: as varied as the data, 0: one image per class,
            which the two scores before cannot see), "frechet_distance": to `reference`, and with
            `labels`, "label_accuracy": share predicted as their requested label}.
        """
        probabilities, features = _predict_both(self, generated)
        predicted = probabilities.argmax(axis=1)
        classes = probabilities.shape[1]
        histogram = np.bincount(predicted, minlength=classes) / len(predicted)
        nonzero = histogram[histogram > 0]
        spread = _class_spread(features, predicted, classes)
        usable = np.isfinite(spread) & np.isfinite(reference["spread"]) & (reference["spread"] > 0)
        weights = histogram * usable
        ratio = np.where(usable, spread / np.where(usable, reference["spread"], 1.0), 0.0)
        scores = {
            "confident_share": float((probabilities.max(axis=1) >= CONFIDENCE).mean()),
            "class_entropy": float(0.0 - (nonzero * np.log(nonzero)).sum()),
            "within_class_diversity": float((weights * ratio).sum() / weights.sum()) if weights.sum() else 0.0,
            "frechet_distance": frechet_distance(reference["moments"], _moments(features)),
        }
        if labels is not None:
            scores["label_accuracy"] = float((predicted == np.asarray(labels).reshape(-1)).mean())
        return scores


def _class_spread(features, classes, count):
    """Per class: mean distance of its members' features to their mean (nan under 2 members)."""
    spread = np.full(count, np.nan)
    for label in range(count):
        members = features[classes == label]
        if len(members) >= 2:
            spread[label] = float(np.linalg.norm(members - members.mean(axis=0), axis=1).mean())
    return spread


def _predict_both(judge, images, batch_size=512):
    import keras

    both = getattr(judge, "_both", None)
    if both is None:
        both = judge._both = keras.Model(
            judge.classifier.inputs[0], [judge.classifier.outputs[0], judge.features.outputs[0]]
        )
    # Direct calls rather than `predict`: the batch counts vary, and `predict` would retrace.
    probabilities, features = [], []
    for start in range(0, len(images), batch_size):
        p, f = both(images[start : start + batch_size], training=False)
        probabilities.append(keras.ops.convert_to_numpy(p))
        features.append(keras.ops.convert_to_numpy(f))
    return np.concatenate(probabilities), np.concatenate(features)


def _moments(features):
    features = np.asarray(features, dtype="float64")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(first, second):
    """Frechet distance between two Gaussians given as (mean, covariance).

    ||m1 - m2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)); the trace of the square root is the sum of the
    square roots of the eigenvalues of C1 C2 (real and non-negative up to rounding).
    """
    (m1, c1), (m2, c2) = first, second
    eigenvalues = np.linalg.eigvals(c1 @ c2)
    root_trace = np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum()
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2.0 * root_trace)


def cache_dir():
    """Where trained judges are kept: $ZOO_CACHE_DIR, else ~/.cache/zoo."""
    return os.environ.get("ZOO_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")


def _judge_model_name():
    from zoo import registry

    # The zoo's CNN when it is there, else its MLP over the flattened pixels.
    return "cnn" if "cnn" in registry.names() else "mlp"


def _build_judge(model_name, shape, num_classes):
    import zoo
    from zoo import registry

    known = registry.info(model_name).hyperparameters
    if model_name == "cnn":
        # Images in [0, 1]; no batch normalization: on the 1,257 digits its running statistics
        # lag the weights and the judge scored 27-63% where it scores 98.6% without.
        overrides = {"input_shape": shape, "num_classes": num_classes, "pixel_max": 1.0, "batch_norm": False}
        return zoo.get("cnn", **{k: v for k, v in overrides.items() if k in known})
    return zoo.get(
        "mlp", input_shape=shape, task="multiclass", num_classes=num_classes, hidden_units=(128, 64), dropout=0.2
    )


def load_judge(images, key, epochs=40):
    """Return the `Judge` of a dataset: from the cache, or trained on its real images and cached.

    Args:
        images: `ImageData` of the dataset.
        key: cache key naming the dataset and its image shape.
        epochs: maximum training epochs (early stopping on the validation split).
    """
    import keras

    model_name = _judge_model_name()
    folder = os.path.join(cache_dir(), "gan_judges")
    path = os.path.join(folder, f"{key}_{model_name}_e{epochs}_v{JUDGE_VERSION}.keras")
    meta_path = path[: -len(".keras")] + ".json"
    if os.path.exists(path) and os.path.exists(meta_path):
        try:
            with open(meta_path) as handle:
                meta = json.load(handle)
            return Judge(keras.saving.load_model(path), meta["test_accuracy"], model_name, path)
        except Exception as error:  # noqa: BLE001 - a damaged cache entry is retrained, not fatal
            print(f"zoo: warning: cached judge {path} unreadable ({type(error).__name__}); retraining it")

    # Fixed seed: the judge of a dataset is the same whichever run trains it first.
    keras.utils.set_random_seed(0)
    classifier = _build_judge(model_name, images.shape, images.num_classes)
    classifier.fit(
        images.x_train,
        images.y_train,
        validation_data=(images.x_val, images.y_val),
        epochs=epochs,
        batch_size=64,
        verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=8, restore_best_weights=True)],
    )
    predicted = classifier.predict(images.x_test, batch_size=512, verbose=0).argmax(axis=1)
    accuracy = float((predicted == images.y_test).mean())
    try:
        os.makedirs(folder, exist_ok=True)
        # Written under a temporary name and renamed: two runs training the same judge at once
        # never leave a half-written file.
        temporary = f"{path}.{os.getpid()}.tmp.keras"
        classifier.save(temporary)
        os.replace(temporary, path)
        with open(meta_path + f".{os.getpid()}.tmp", "w") as handle:
            json.dump(
                {
                    "test_accuracy": accuracy,
                    "model": model_name,
                    "dataset": images.name,
                    "shape": list(images.shape),
                    "source": images.source,
                },
                handle,
            )
        os.replace(meta_path + f".{os.getpid()}.tmp", meta_path)
    except OSError as error:
        print(f"zoo: warning: cannot cache the judge in {folder} ({error.strerror}); set ZOO_CACHE_DIR")
    return Judge(classifier, accuracy, model_name, path)


def _dataset_key(images, config):
    shape = "x".join(str(d) for d in images.shape)
    if config.data:
        # A folder is named by its path and contents' size, so a changed folder gets a new judge.
        digest = hashlib.sha1(f"{os.path.abspath(config.data)}:{len(images.x_train)}:{len(images.x_test)}".encode())
        name = f"folder-{re.sub(r'[^A-Za-z0-9_-]', '_', images.name)}-{digest.hexdigest()[:10]}"
    else:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", images.name)
    return f"{name}_{shape}_{images.num_classes}classes"


# === The per-epoch callback ===


def quality_callback(model, judge, reference, config):
    """A Keras callback that, at each epoch end, scores a fixed latent batch and logs a sample grid."""
    import keras
    import mlflow

    labels = _balanced_labels(config.samples, model.num_classes) if model.conditional else None
    grid_inputs, grid_columns = _grid_inputs(model, seed=config.seed)

    class GANQuality(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            # Each process scores the same samples alone: several processes share no step here.
            with devices.locally(model):
                generated = model.generate(config.samples, labels=labels, seed=config.seed + 1)
                scores = judge.score(generated, reference, labels)
                grid = keras.ops.convert_to_numpy(model(grid_inputs, training=False))
            if logs is not None:
                # Added to the epoch's logs: the run's checkpoint callback, which runs later, logs them
                # with the epoch as step, and they join the history.
                logs.update(scores)
            scale = max(1, int(np.ceil(32 / grid.shape[1])))
            mlflow.log_image(plots.tile_images(grid, columns=grid_columns, scale=scale), key="samples", step=epoch)

    return GANQuality()


def _balanced_labels(count, classes):
    return np.arange(count) % classes


def _latent_batch(model, count, seed):
    """Inputs for `model` (the GAN): latent vectors, and labels 0, 1, ... when conditional."""
    latent = np.random.default_rng(seed).standard_normal((count, model.latent_dim)).astype("float32")
    if not model.conditional:
        return latent
    return {"latent": latent, "label": _balanced_labels(count, model.num_classes).astype("int32").reshape(-1, 1)}


def _grid_inputs(model, seed, rows=8):
    """A fixed grid: 8x8 samples, or when conditional one row per latent vector and one column per
    class (the first 10), so that a row shows one style drawn as each class."""
    rng = np.random.default_rng(seed)
    if not model.conditional:
        return rng.standard_normal((64, model.latent_dim)).astype("float32"), 8
    columns = min(model.num_classes, 10)
    latent = np.repeat(rng.standard_normal((rows, model.latent_dim)).astype("float32"), columns, axis=0)
    labels = np.tile(np.arange(columns), rows).astype("int32").reshape(-1, 1)
    return [latent, labels], columns


# === Checks ===


def _check_one_size(folder):
    """Refuse a folder whose images differ in size: a GAN generates one size, say which to use."""
    from PIL import Image

    from zoo.datasets import images

    formats = getattr(images, "IMAGE_FORMATS", (".bmp", ".gif", ".jpeg", ".jpg", ".png"))
    sizes = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if not name.lower().endswith(formats):
                continue
            try:
                with Image.open(os.path.join(root, name)) as image:
                    sizes.setdefault(image.size, os.path.join(root, name))
            except OSError:
                continue  # unreadable files are the loader's to report
            if len(sizes) > 1:
                (w1, h1), (w2, h2) = list(sizes)[:2]
                raise ZooError(
                    f"The images in {folder} differ in size ({h1}x{w1} and {h2}x{w2}, e.g. "
                    f"{list(sizes.values())[1]}); a GAN generates one size: pass `image_size=HEIGHT,WIDTH` "
                    "to resize them all."
                )


def _check_images(loaded, source):
    x = loaded.x_train
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or not np.issubdtype(x.dtype, np.floating):
        raise ZooError(
            f"{source} did not give images (batch, height, width, 1 or 3 channels); got arrays of "
            f"shape {x.shape}. Use an image dataset or a folder of image files."
        )
    if len(x) < 16:
        raise ZooError(f"{source} has {len(x)} training images: too few to train a GAN (hundreds at least).")


def _mlflow_datasets(loaded):
    import mlflow

    try:
        source = tracking.dataset_source(loaded.source)
        return [
            (
                mlflow.data.from_numpy(
                    loaded.x_train, targets=loaded.y_train, source=source, name=f"{loaded.name}-train"
                ),
                "training",
            )
        ]
    except Exception:  # noqa: BLE001 - dataset lineage is a nicety; never fail a run for it
        return []
