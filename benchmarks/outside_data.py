"""Benchmark: each technique's default command on data this project did not make, against a trivial baseline and a peer.

Every dataset is written to a temporary folder in the form a user would hand the zoo (a CSV, an
image folder with one subfolder per class and train/ and test/ splits, a line folder with
`labels.csv`, an `.npz` of sequences), then trained with the recipe's default command
(`zoo train RECIPE --data PATH`, no tuning flags) through `zoo.training.train`. On the same test
rows the script scores the trivial baseline (scikit-learn's `DummyClassifier` / `DummyRegressor`,
the most frequent character, an untrained RBM of the same size) and, where one exists, the peer a
practitioner would reach for (scikit-learn). One line per dataset; exit status 1 when a zoo default
does not beat its baseline (the scripts' convention for a missed target).

- mlp: statsmodels' `fair` (affairs, binary, categorical occupations), `anes96` (1996 vote, binary,
  categorical party id), `grunfeld` (investment, regression, categorical firm) and scikit-learn's
  diabetes (regression, `sex` as text). Peer: `HistGradientBoosting*` and a linear model
  (`LogisticRegression` / `Ridge`) on one-hot categories, the better of the two on the test rows shown.
- cnn: letters rendered from matplotlib's fonts, patches cut from scikit-learn's two sample photos,
  and shapes drawn with Pillow. Peer: logistic regression on the pixels.
- ocr: the three line sets of `benchmarks/outside_lines.py` (captcha, words, serial codes). No peer
  on this machine (no Tesseract or EasyOCR installed).
- recurrent (`zoo train lstm`, many_to_one, the mode that takes user data besides forecasts):
  the letters and the shapes read row by row (`.npz`), and docstring sentences of three standard
  library packages labelled by package (CSV of texts). Peer: logistic regression on the flattened
  rows / TF-IDF words. Forecasting is benchmarked by `benchmarks/forecast.py`, not here.
- rbm: the letters and the shapes binarized at 16x16 and scikit-learn's breast cancer table
  binarized at the training medians, as CSVs of 0/1 columns. Baseline: an untrained RBM of the same
  size (weights N(0, 0.01), zero biases); peer: scikit-learn's `BernoulliRBM`, same hidden units,
  learning rate and epochs; figure: test pseudo-likelihood (higher is better).
- gan: the letters, the photo patches and the shapes (the training images of the cnn's folders).
  Figure: the recipe's Frechet distance in the feature space of its judge (a zoo cnn trained on the
  folder's real images, lower is better); baseline: an untrained generator of the same size scored
  by the same judge (the recipe's own `test_baseline_frechet_distance`). No peer installed.

    python benchmarks/outside_data.py                        # everything (hours on 2 busy cores)
    python benchmarks/outside_data.py --techniques ocr,mlp   # some techniques
    python benchmarks/outside_data.py --quick                # tiny data, 1 epoch: checks the plumbing
    python benchmarks/outside_data.py --json figures.json    # also write the figures as JSON
"""

import argparse
import csv
import inspect
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outside_lines  # noqa: E402

TECHNIQUES = ("mlp", "cnn", "ocr", "recurrent", "rbm", "gan")
SEED = 42
LETTERS = "ABCDEFGHKR"
SHAPES = ("circle", "square", "triangle", "cross")


# === Tables ===


def table_fair(folder):
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data
    frame["had_affair"] = np.where(frame.pop("affairs") > 0, "yes", "no")
    for column in ("occupation", "occupation_husb", "religious"):
        frame[column] = frame[column].astype(int).map(lambda v, c=column: f"{c}{v}")
    return _csv(frame, folder, "fair"), "had_affair"


def table_anes96(folder):
    import statsmodels.api as sm

    frame = sm.datasets.anes96.load_pandas().data.drop(columns=["logpopul"])
    frame["vote"] = np.where(frame["vote"] > 0, "Dole", "Clinton")
    frame["PID"] = frame["PID"].astype(int).map(lambda v: f"party{v}")
    return _csv(frame, folder, "anes96"), "vote"


def table_grunfeld(folder):
    import statsmodels.api as sm

    frame = sm.datasets.grunfeld.load_pandas().data
    frame["firm"] = frame["firm"].astype(str)
    return _csv(frame, folder, "grunfeld"), "invest"


def table_diabetes(folder):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = np.where(frame["sex"] > 1.5, "M", "F")
    return _csv(frame, folder, "diabetes"), "target"


TABLES = {"fair": table_fair, "anes96": table_anes96, "grunfeld": table_grunfeld, "diabetes": table_diabetes}


def _csv(frame, folder, name):
    path = os.path.join(folder, f"{name}.csv")
    frame.to_csv(path, index=False)
    return path


def bench_mlp(name, folder, quick, train):
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from zoo.datasets import tabular

    path, target = TABLES[name](folder)
    # The zoo's own split and column kinds, so that the peer sees exactly the zoo's training and test rows.
    splits = tabular.prepare(tabular.read_csv(path, target), seed=SEED)
    categorical = [c for c, f in splits.features.items() if f["kind"] == "categorical"]
    numeric = [c for c in splits.features if c not in categorical]
    fit = splits.train._append(splits.validation) if hasattr(splits.train, "_append") else splits.train
    x_fit, x_test = fit[list(splits.features)], splits.test[list(splits.features)]
    y_fit, y_test = splits.labels(fit), splits.labels(splits.test)
    regression = splits.task == "regression"

    def columns():
        return ColumnTransformer(
            [
                ("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
                ("numbers", StandardScaler(), numeric),
            ]
        )

    if regression:
        peers = {"hgb": HistGradientBoostingRegressor(random_state=SEED), "ridge": Ridge()}
        baseline = DummyRegressor().fit(x_fit, y_fit)
        score = lambda model: float(np.mean(np.abs(model.predict(x_test) - y_test)))  # noqa: E731
    else:
        peers = {
            "hgb": HistGradientBoostingClassifier(random_state=SEED),
            "logistic": LogisticRegression(max_iter=2000),
        }
        baseline = DummyClassifier().fit(x_fit, y_fit)
        score = lambda model: float(np.mean(model.predict(x_test) == y_test))  # noqa: E731
    scores = {n: score(make_pipeline(columns(), m).fit(x_fit, y_fit)) for n, m in peers.items()}
    best = (min if regression else max)(scores, key=scores.get)
    metric = "test_mae" if regression else "test_accuracy"
    zoo = train("mlp", {"data": path, "target": target, **({"epochs": 1} if quick else {})})
    return {
        "metric": metric,
        "lower_is_better": regression,
        "zoo": zoo[metric],
        "baseline": score(baseline),
        "peer": scores[best],
        "peer_name": f"{best} ({', '.join(f'{n} {v:.4g}' for n, v in scores.items())})",
        "rows": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "command": f"zoo train mlp --data {name}.csv --target {target}",
        "zoo_epochs": zoo.get("epochs_trained"),
    }


# === Images ===


def _glyph_image(rng, letter, size=28):
    from PIL import Image, ImageDraw, ImageFont

    files = outside_lines.fonts("sans") + outside_lines.fonts("serif") + outside_lines.fonts("italic")
    font = ImageFont.truetype(files[int(rng.integers(len(files)))], int(rng.integers(16, 23)))
    image = Image.new("L", (size, size), 0)
    box = font.getbbox(letter)
    x = (size - (box[2] - box[0])) // 2 - box[0] + int(rng.integers(-3, 4))
    y = (size - (box[3] - box[1])) // 2 - box[1] + int(rng.integers(-3, 4))
    ImageDraw.Draw(image).text((x, y), letter, font=font, fill=255)
    image = image.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    pixels = np.asarray(image, dtype="float32") + rng.normal(0, 20, (size, size))
    return np.clip(pixels, 0, 255).astype("uint8")


def _shape_image(rng, shape, size=32):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 120, 3)))
    draw = ImageDraw.Draw(image)
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    r = float(rng.uniform(6, 12))
    cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, 2))
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        w = max(2.0, r / 3)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=colour)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=colour)
    angle = float(rng.uniform(-30, 30))
    image = image.rotate(angle, resample=Image.BILINEAR, fillcolor=image.getpixel((0, 0)))
    pixels = np.asarray(image, dtype="float32") + rng.normal(0, 15, (size, size, 3))
    return np.clip(pixels, 0, 255).astype("uint8")


def _photo_patches(rng, count, size=24):
    """Patches of scikit-learn's two sample photos; class = photo and half (top/bottom)."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    names = ("china_top", "china_bottom", "flower_top", "flower_bottom")
    out = []
    for index in range(count):
        label = index % len(names)
        photo = photos[label // 2]
        half = photo.shape[0] // 2
        top = int(rng.integers(0, half - size)) + (half if label % 2 else 0)
        left = int(rng.integers(0, photo.shape[1] - size))
        out.append((names[label], photo[top : top + size, left : left + size]))
    return out


def image_set(name, count, seed=SEED):
    """(class names, list of (class, uint8 image)) for one image set."""
    rng = np.random.default_rng(seed)
    if name == "letters":
        return list(LETTERS), [(LETTERS[i % 10], _glyph_image(rng, LETTERS[i % 10])) for i in range(count)]
    if name == "shapes":
        return list(SHAPES), [(SHAPES[i % 4], _shape_image(rng, SHAPES[i % 4])) for i in range(count)]
    if name == "photo_patches":
        patches = _photo_patches(rng, count)
        return sorted({c for c, _ in patches}), patches
    raise ValueError(name)


IMAGE_SETS = ("letters", "photo_patches", "shapes")


def write_image_folder(name, folder, count):
    """Write folder/train/CLASS/*.png and folder/test/CLASS/*.png (a quarter for test); return arrays."""
    from PIL import Image

    classes, items = image_set(name, count)
    root = os.path.join(folder, name)
    arrays = {"train": ([], []), "test": ([], [])}
    for index, (label, pixels) in enumerate(items):
        # Every fourth image of each class is a test image (the sets cycle through the classes).
        split = "test" if (index // len(classes)) % 4 == 3 else "train"
        os.makedirs(os.path.join(root, split, label), exist_ok=True)
        Image.fromarray(pixels).save(os.path.join(root, split, label, f"{index:05d}.png"))
        arrays[split][0].append(pixels)
        arrays[split][1].append(classes.index(label))
    return root, {split: (np.stack(x), np.array(y)) for split, (x, y) in arrays.items()}


def bench_cnn(name, folder, quick, train):
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    root, arrays = write_image_folder(name, folder, 120 if quick else 1600)
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
    peer = LogisticRegression(max_iter=1000).fit(flat(x_train), y_train)
    baseline = DummyClassifier().fit(flat(x_train), y_train)
    zoo = train("cnn", {"data": root, **({"epochs": 1} if quick else {})})
    return {
        "metric": "test_accuracy",
        "lower_is_better": False,
        "zoo": zoo["test_accuracy"],
        "baseline": float(baseline.score(flat(x_test), y_test)),
        "peer": float(peer.score(flat(x_test), y_test)),
        "peer_name": "logistic regression on pixels",
        "rows": {"train": len(x_train), "test": len(x_test)},
        "command": f"zoo train cnn --data {name}/",
        "zoo_epochs": zoo.get("epochs_trained"),
    }


# === Lines ===


def bench_ocr(name, folder, quick, train):
    root = outside_lines.write(name, os.path.join(folder, name), 60 if quick else 1500, seed=SEED)
    zoo = train("ocr", {"data": root, **({"epochs": 1} if quick else {})})
    return {
        "metric": "test_char_error_rate",
        "lower_is_better": True,
        "zoo": zoo["test_char_error_rate"],
        "baseline": zoo["test_baseline_char_error_rate"],
        "peer": None,
        "peer_name": "none installed (Tesseract, EasyOCR)",
        "exact_match": zoo["test_exact_match"],
        "command": f"zoo train ocr --data {name}/",
        "zoo_epochs": zoo.get("epochs_trained"),
    }


# === Sequences (many-to-one) ===


def docstring_sentences():
    """(sentence, package) from the docstrings of three standard-library packages."""
    import email
    import email.message
    import email.utils
    import re
    import tarfile
    import unittest
    import unittest.mock
    import zipfile

    rows = []
    for label, modules in (
        ("email", (email, email.message, email.utils)),
        ("unittest", (unittest, unittest.mock, unittest.case)),
        ("archives", (tarfile, zipfile)),
    ):
        seen = set()
        for module in modules:
            for _, member in inspect.getmembers(module):
                for item in [member, *[m for _, m in inspect.getmembers(member) if inspect.isfunction(m)]][:40]:
                    doc = inspect.getdoc(item) if callable(item) else None
                    if not doc:
                        continue
                    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                        words = sentence.split()
                        if 4 <= len(words) <= 60 and sentence not in seen:
                            seen.add(sentence)
                            rows.append((sentence, label))
    # Inherited docstrings (object's, Exception's) appear under several packages: not evidence of either.
    labels = {}
    for sentence, label in rows:
        labels.setdefault(sentence, set()).add(label)
    return [(s, label) for s, label in rows if len(labels[s]) == 1]


SEQUENCE_SETS = ("letter_rows", "shape_rows", "docstrings")


def bench_recurrent(name, folder, quick, train):
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from zoo.datasets import splits

    if name == "docstrings":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        rows = docstring_sentences()
        rng = np.random.default_rng(SEED)
        rows = [rows[i] for i in rng.permutation(len(rows))][: 150 if quick else None]
        path = os.path.join(folder, "docstrings.csv")
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        classes = sorted({label for _, label in rows})
        x = np.array([text for text, _ in rows], dtype=object)
        y = np.array([classes.index(label) for _, label in rows])
        peer_model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000))
        peer_name = "TF-IDF + logistic regression"
        options = {"data": path}
        flat = lambda v: v  # noqa: E731
    else:
        image = "letters" if name == "letter_rows" else "shapes"
        classes, items = image_set(image, 120 if quick else 1600)
        # Rows as time steps (gray, 0-1), as the row-by-row MNIST LSTM of the Keras examples.
        x = np.stack([(p.mean(axis=-1) if p.ndim == 3 else p) / 255.0 for _, p in items]).astype("float32")
        y = np.array([classes.index(c) for c, _ in items])
        path = os.path.join(folder, f"{name}.npz")
        np.savez(path, x=x, y=y)
        peer_model = LogisticRegression(max_iter=1000)
        peer_name = "logistic regression on the flattened rows"
        options = {"data": path}
        flat = lambda v: v.reshape(len(v), -1)  # noqa: E731
    train_rows, val_rows, test_rows = splits.split_rows(len(x), SEED, 0.1, 0.2)
    fit_rows = np.concatenate([train_rows, val_rows])
    peer = peer_model.fit(flat(x[fit_rows]), y[fit_rows])
    baseline = DummyClassifier().fit(flat(x[fit_rows]), y[fit_rows])
    zoo = train("lstm", {**options, **({"epochs": 1} if quick else {})})
    return {
        "metric": "test_accuracy",
        "lower_is_better": False,
        "zoo": zoo["test_accuracy"],
        "baseline": float(baseline.score(flat(x[test_rows]), y[test_rows])),
        "peer": float(peer.score(flat(x[test_rows]), y[test_rows])),
        "peer_name": peer_name,
        "rows": {"train+validation": len(fit_rows), "test": len(test_rows)},
        "command": f"zoo train lstm --data {os.path.basename(path)}",
        "zoo_epochs": zoo.get("epochs_trained"),
    }


# === Binary tables for the RBM ===

BINARY_SETS = ("letters16", "shapes16", "breast_cancer_binary")


def bench_rbm(name, folder, quick, train):
    from sklearn.neural_network import BernoulliRBM

    from zoo.datasets import splits
    from zoo.models import rbm

    count = 120 if quick else 1600
    if name == "breast_cancer_binary":
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        train_rows, _, _ = splits.split_rows(len(data.data), SEED, 0.1, 0.2)
        x = (data.data > np.median(data.data[train_rows], axis=0)).astype("float32")
        labels = np.array(data.target_names)[data.target]
        columns = [f"f{i}" for i in range(x.shape[1])]
    else:
        from PIL import Image

        classes, items = image_set("letters" if name == "letters16" else "shapes", count)
        small = [np.asarray(Image.fromarray(p).convert("L").resize((16, 16), Image.BILINEAR)) for _, p in items]
        x = (np.stack(small).reshape(len(small), -1) > 127).astype("float32")
        labels = np.array([c for c, _ in items])
        columns = [f"p{i}" for i in range(x.shape[1])]
    path = os.path.join(folder, f"{name}.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "label"])
        for row, label in zip(x.astype(int).tolist(), labels):
            writer.writerow([*row, label])
    train_rows, val_rows, test_rows = splits.split_rows(len(x), SEED, 0.1, 0.2)
    # The zoo RBM's own defaults, so that the peer and the baseline are the same size.
    defaults = inspect.signature(rbm.RBM.__init__).parameters
    hidden = int(defaults["hidden_units"].default)
    learning_rate = float(defaults["learning_rate"].default)
    epochs = 1 if quick else 20
    peer = BernoulliRBM(n_components=hidden, learning_rate=learning_rate, n_iter=epochs, batch_size=10, random_state=0)
    peer.fit(x[train_rows])
    untrained = BernoulliRBM(n_components=hidden, random_state=0)
    rng = np.random.default_rng(SEED)
    untrained.components_ = rng.normal(0, 0.01, (hidden, x.shape[1]))
    untrained.intercept_hidden_ = np.zeros(hidden)
    untrained.intercept_visible_ = np.zeros(x.shape[1])
    untrained.h_samples_ = np.zeros((10, hidden))
    untrained.random_state = 0
    score = lambda model: float(np.mean(model.score_samples(x[test_rows])))  # noqa: E731
    zoo = train("rbm", {"data": path, "target": "label", **({"epochs": 1} if quick else {})})
    return {
        "metric": "test_pseudo_likelihood",
        "lower_is_better": False,
        "zoo": zoo["test_pseudo_likelihood"],
        "baseline": score(untrained),
        "peer": score(peer),
        "peer_name": f"sklearn BernoulliRBM ({hidden} hidden, lr {learning_rate}, {epochs} epochs)",
        "rows": {"train": len(train_rows), "test": len(test_rows), "columns": x.shape[1]},
        "command": f"zoo train rbm --data {name}.csv --target label",
        "zoo_epochs": zoo.get("epochs_trained"),
    }


def bench_gan(name, folder, quick, train):
    root, arrays = write_image_folder(name, folder, 120 if quick else 1600)
    zoo = train("gan", {"data": os.path.join(root, "train"), **({"epochs": 1} if quick else {})})
    return {
        "metric": "test_frechet_distance",
        "lower_is_better": True,
        "zoo": zoo["test_frechet_distance"],
        # An untrained generator of the same size, scored by the same judge (the recipe's baseline).
        "baseline": zoo["test_baseline_frechet_distance"],
        "peer": None,
        "peer_name": "none installed (no GAN library here)",
        "rows": {"train": len(arrays["train"][0])},
        "confident_share": zoo.get("test_confident_share"),
        "command": f"zoo train gan --data {name}/train/",
        "zoo_epochs": zoo.get("epochs_trained"),
    }


DATASETS = {
    "mlp": (tuple(TABLES), bench_mlp),
    "cnn": (IMAGE_SETS, bench_cnn),
    "ocr": (outside_lines.SETS, bench_ocr),
    "recurrent": (SEQUENCE_SETS, bench_recurrent),
    "rbm": (BINARY_SETS, bench_rbm),
    "gan": (IMAGE_SETS, bench_gan),
}


def beats(record):
    if record["zoo"] is None or record["baseline"] is None:
        return False
    return record["zoo"] < record["baseline"] if record["lower_is_better"] else record["zoo"] > record["baseline"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--techniques", default=",".join(TECHNIQUES), help=f"comma-separated, from {', '.join(TECHNIQUES)}"
    )
    parser.add_argument("--datasets", help="comma-separated dataset names (default: every one of the techniques)")
    parser.add_argument("--quick", action="store_true", help="tiny data, 1 epoch, first dataset per technique")
    parser.add_argument("--json", metavar="PATH", help="also write one record per dataset to this JSON file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every run, as `zoo train --set`"
    )
    args = parser.parse_args(argv)
    settings = dict(pair.split("=", 1) for pair in args.set)
    techniques = args.techniques.split(",")
    unknown = [t for t in techniques if t not in DATASETS]
    if unknown:
        parser.error(f"unknown technique(s) {', '.join(unknown)}; choose from {', '.join(TECHNIQUES)}")
    if args.json:
        args.json = os.path.abspath(args.json)  # the runs below change the working directory
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import training

    records, failures = [], 0
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        store = f"sqlite:///{folder}/mlflow.db"

        def train(recipe, options):
            started = time.perf_counter()
            result = training.train(recipe, {"tracking_uri": store, "seed": SEED, **options}, settings)
            metrics = dict(result.metrics)
            metrics["wall_seconds"] = time.perf_counter() - started
            return metrics

        for technique in techniques:
            names, bench = DATASETS[technique]
            wanted = args.datasets.split(",") if args.datasets else names
            chosen = [n for n in wanted if n in names]
            for name in chosen[:1] if args.quick else chosen:
                data = os.path.join(folder, "data")
                os.makedirs(data, exist_ok=True)
                started = time.perf_counter()
                record = {"technique": technique, "dataset": name, **bench(name, data, args.quick, train)}
                record["wall_seconds"] = time.perf_counter() - started
                record["beats_baseline"] = beats(record)
                failures += not record["beats_baseline"]
                records.append(record)
                peer = "-" if record["peer"] is None else f"{record['peer']:.4f}"
                print(
                    f"{technique:<9} {name:<20} {record['metric']}: zoo={record['zoo']:.4f} "
                    f"baseline={record['baseline']:.4f} peer={peer} ({record['peer_name']}) "
                    f"{'beats baseline' if record['beats_baseline'] else 'LOSES to baseline'} "
                    f"epochs={record['zoo_epochs']} wall_seconds={record['wall_seconds']:.0f}",
                    flush=True,
                )
    print(table(records))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"quick": args.quick, "records": records}, handle, indent=2, default=str)
    print(f"{len(records) - failures} of {len(records)} defaults beat their trivial baseline")
    return 1 if failures else 0


def table(records):
    """The README's Markdown table."""
    lines = [
        "| technique | dataset | figure | zoo default | trivial baseline | peer |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in records:
        peer = "-" if r["peer"] is None else f"{r['peer']:.4f} ({r['peer_name'].split(' (')[0]})"
        mark = "" if r["beats_baseline"] else " (loses)"
        lines.append(
            f"| {r['technique']} | {r['dataset']} | {r['metric'][5:]} | **{r['zoo']:.4f}**{mark} | "
            f"{r['baseline']:.4f} | {peer} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
