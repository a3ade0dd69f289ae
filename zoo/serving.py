"""Serving: every recipe's logged model predicts through `mlflow.pyfunc` on the raw input a user has.

A logged model carries two MLflow flavors over one `data/model.keras` file:
- `keras`, so `mlflow.keras.load_model` (and `zoo predict`, `zoo generate`, `zoo export`) get the
  Keras model back;
- `python_function` with this module as its loader, so `mlflow.pyfunc.load_model` and
  `mlflow models serve` (`zoo serve`) predict through an adapter that turns a request into what
  the Keras model takes and its answer into what a person wants back.

An adapter (`data/serving.json` names its kind and settings) knows one kind of raw input:
- `tensor`: an array (`{"inputs": ...}`: pixels 0-255, digit rows, frames, binary RBM rows) in;
- `table`: table rows (`dataframe_records` / `dataframe_split`), numbers and text categories as
  in the CSV, in;
- `text`: a `text` column of raw strings in;
- `caption`, `ocr`: images in; `forecast`: windows in;
- `generator`: rows of `label` (conditional GANs) and `seed` in.

The answer names what it holds, one row per request row (README's serving table lists them):
a classifier answers one probability column per class, named by the class names it trained on
(saved in `serving.json`), and `label`, the most probable class; a regression `value` (`value_1`
... for several outputs); the RBM `hidden_1` ... ; the generator `seed`, `label` and `image`;
the captioner `caption`; OCR `text` and `confidence`; a forecaster `forecast_1` ... with
`lower_h`/`upper_h` where it has an interval. Per-step outputs (many-to-many) stay an array
(batch, steps, classes). A caller who wants the model's array passes the param `output="array"`
(`predict(rows, params={"output": "array"})`, or `"params": {"output": "array"}` in the JSON
body): the Keras model's output as it is (the generator's scaled to pixels 0-255).

Vectorization of texts lives in the adapter (the vocabulary is in `serving.json`), so a served
text classifier takes sentences while the Keras model keeps taking token ids, as it trains.

Bad requests (a missing column, a wrong shape, an unknown category, a label out of range) raise
`MlflowException` with a message naming the problem, which the scoring server answers with 400.
"""

import json
import os
import sys

import numpy as np

SERVING_FILE = "serving.json"
MODEL_FILE = "model.keras"
DATA_DIR = "data"


# === Adapters: raw request <-> Keras model ===


class Adapter:
    """Turns a request into the Keras model's inputs and its outputs into the response."""

    kind = ""
    # What a model logged before answers were named gives without the param (its serving.json has
    # no `answer`): its array, which its signature promises; captions, OCR and forecasts were named.
    former_answer = "array"

    def __init__(self, **settings):
        self.settings = settings

    def inputs(self, model, data):
        """Return what `model` takes for the request `data`; raise `MlflowException` for a bad one."""
        raise NotImplementedError

    def array(self, model, raw, data):
        """The answer to `output="array"`: the model's output."""
        return np.asarray(raw)

    def columns(self, array, data):
        """The named answer: a DataFrame, one row per request row (an array where none fits)."""
        import pandas as pd

        if array.ndim != 2:
            return array  # per-step outputs (many-to-many): (batch, steps, classes)
        classes = self.settings.get("classes")
        if classes:
            return class_columns(array, classes)
        prefix = self.settings.get("columns", "value")
        names = [prefix] if array.shape[1] == 1 else [f"{prefix}_{i}" for i in range(1, array.shape[1] + 1)]
        return pd.DataFrame(array.astype("float64"), columns=names)

    def input_schema(self, model, example):
        """The MLflow schema of the request the adapter takes."""
        raise NotImplementedError

    def signature(self, model, example):
        """The MLflow signature: the request the adapter takes, the named answer, the `output` param."""
        from mlflow.models import ModelSignature
        from mlflow.types.schema import ParamSchema, ParamSpec

        params = ParamSchema([ParamSpec(OUTPUT_PARAM, "string", COLUMNS)])
        answer = self.predict(model, example)
        return ModelSignature(self.input_schema(model, example), answer_schema(answer), params)

    def predict(self, model, data, params=None):
        import keras

        wanted = (params or {}).get(OUTPUT_PARAM, self.settings.get("answer", self.former_answer))
        if wanted not in (COLUMNS, ARRAY):
            raise _bad(f"The param {OUTPUT_PARAM!r} takes {COLUMNS!r} or {ARRAY!r}. Received: {wanted!r}")
        inputs = self.inputs(model, data)
        first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
        if not len(first):
            # Keras' layers fail on a batch of none (an LSTM's "Biases must be 1D").
            raise _bad("The request holds no rows: send at least one.")
        raw = keras.ops.convert_to_numpy(model(inputs, training=False))
        array = self.array(model, raw, data)
        return array if wanted == ARRAY else self.columns(array, data)


# The pyfunc param that picks the answer: named columns (default) or the model's array.
OUTPUT_PARAM, COLUMNS, ARRAY = "output", "columns", "array"
LABEL = "label"


def class_columns(probabilities, classes):
    """One probability column per class, named by the class names, and `label`, the likeliest class.

    A sigmoid's single column is the probability of the second of two classes. A class named
    `label` keeps its column; the likeliest class is then `predicted_label`.
    """
    import pandas as pd

    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.shape[1] == 1 and len(classes) == 2:
        probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
    names = [str(name) for name in classes]
    frame = pd.DataFrame(probabilities, columns=names)
    frame[LABEL if LABEL not in names else f"predicted_{LABEL}"] = np.asarray(names, dtype=object)[
        probabilities.argmax(axis=1)
    ]
    return frame


def answer_schema(answer):
    """The MLflow schema of an answer: a column per DataFrame column, or one tensor."""
    from mlflow.types.schema import Schema, TensorSpec

    if hasattr(answer, "columns"):
        import warnings

        from mlflow.types.utils import _infer_schema

        with warnings.catch_warnings():
            # MLflow's hint that an integer column cannot hold a missing value: `seed` never does.
            warnings.simplefilter("ignore", UserWarning)
            return _infer_schema(answer)
    return Schema([TensorSpec(answer.dtype, (-1, *answer.shape[1:]))])


def _bad(message):
    from mlflow.exceptions import MlflowException

    return MlflowException.invalid_parameter_value(message)


def _frame(data, columns_hint):
    """A DataFrame from a DataFrame, a dict of columns, a list of records or an array of rows."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in data.items()})
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pd.DataFrame.from_records(data)
    array = np.asarray(data)
    if array.ndim == 1 and len(columns_hint) == 1:
        return pd.DataFrame({columns_hint[0]: array})
    raise _bad(f"Expected table rows with columns {', '.join(columns_hint)}; received {type(data).__name__}.")


def _refuse_nonfinite(values, what, empty_allowed=False):
    """Refuse an infinite number, or one float32 cannot hold (and NaN in an array, where no cell may be
    empty): every model was trained on finite numbers (the loaders refuse others), and would answer NaN.

    A NaN in a table's number column is an empty cell, which stands for the training mean.
    """
    values = np.asarray(values, dtype="float64")
    with np.errstate(invalid="ignore", over="ignore"):
        bad = np.isinf(values) | (np.abs(values) > np.finfo("float32").max)
        if not empty_allowed:
            bad |= np.isnan(values)
    if bad.any():
        where = np.argwhere(bad)[0]
        place = f" at index [{', '.join(map(str, where))}]" if values.ndim > 1 else f" in row {where[0]}"
        raise _bad(
            f"{what} holds {values[tuple(where)]:g}{place} ({int(bad.sum())} such value(s)): the model was trained "
            "on finite numbers only; send finite values (an empty cell of a table stands for the training mean)."
        )


def input_shape(model):
    """Shape of one input of a single-input model: from its inputs, or its build config (RBM)."""
    inputs = getattr(model, "inputs", None)
    if inputs:
        return tuple(inputs[0].shape[1:])
    return tuple((model.get_build_config() or {}).get("input_shape", (None,))[1:])


class Tensor(Adapter):
    """One array in (raw pixels, sequences, binary rows), the model's output back."""

    kind = "tensor"

    def inputs(self, model, data):
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        try:
            # A number float32 cannot hold becomes inf, which `_refuse_nonfinite` names.
            with np.errstate(over="ignore"):
                array = np.asarray(data, dtype="float32")
        except (TypeError, ValueError):
            raise _bad('Expected an array of numbers (JSON {"inputs": [...]}).') from None
        expected = input_shape(model)
        if array.ndim == len(expected):  # one example without its batch axis
            array = array[np.newaxis]
        if array.ndim != len(expected) + 1 or any(e is not None and e != a for e, a in zip(expected, array.shape[1:])):
            shown = "(batch, " + ", ".join("any" if d is None else str(d) for d in expected) + ")"
            raise _bad(f"Expected inputs of shape {shown}; received shape {array.shape}.")
        _refuse_nonfinite(array, "The inputs")
        return array

    def input_schema(self, model, example):
        from mlflow.types.schema import Schema, TensorSpec

        example = np.asarray(example, dtype="float32")
        return Schema([TensorSpec(np.dtype("float32"), (-1, *example.shape[1:]))])


class Table(Adapter):
    """Table rows (numbers and text categories) in, one named tensor per column for the MLP.

    Settings: `features`, the MLP's column spec (kind, dtype, vocabulary, mean).
    """

    kind = "table"

    def inputs(self, model, data):
        features = self.settings["features"]
        frame = _frame(data, list(features))
        missing = [column for column in features if column not in frame.columns]
        if missing:
            raise _bad(f"Missing column(s) {', '.join(missing)}; the model takes {', '.join(features)}.")
        inputs = {}
        for column, spec in features.items():
            values = frame[column]
            if spec["kind"] == "numeric":
                import pandas as pd

                numbers = pd.to_numeric(values, errors="coerce")
                bad = values[numbers.isna() & values.notna()]
                if len(bad):
                    raise _bad(f"Column '{column}' is numeric but holds {bad.iloc[0]!r}.")
                _refuse_nonfinite(numbers.to_numpy(dtype="float64"), f"Column '{column}'", empty_allowed=True)
                # A missing number stands for the training mean, as in training.
                inputs[column] = numbers.fillna(spec["mean"]).to_numpy(dtype="float32").reshape(-1, 1)
                continue
            known = spec["vocabulary"]
            if spec["dtype"] == "string":
                cells = values.astype(str)
            else:
                try:
                    cells = values.astype("int64")
                except (TypeError, ValueError):
                    raise _bad(f"Column '{column}' takes integer categories; received {values.iloc[0]!r}.") from None
            unknown = sorted(set(cells.tolist()) - set(known), key=str)
            if unknown:
                shown = ", ".join(map(str, known[:20])) + (", ..." if len(known) > 20 else "")
                raise _bad(f"Unknown category {unknown[0]!r} in column '{column}'; known: {shown}.")
            if spec.get("codes"):
                from zoo.datasets import tabular

                # The model takes the codes the training pipeline gave it (JAX, PyTorch).
                inputs[column] = tabular.category_codes(cells, known).reshape(-1, 1)
                continue
            dtype = object if spec["dtype"] == "string" else "int64"
            inputs[column] = cells.to_numpy(dtype=dtype).reshape(-1, 1)
        return inputs

    def predict(self, model, data, params=None):
        import warnings

        with warnings.catch_warnings():
            # Keras warns on every call that a column name ('mean radius') is not its input's
            # name ('mean_radius'); the inputs are matched all the same.
            warnings.filterwarnings("ignore", message="When providing `inputs` as a dict", category=UserWarning)
            return super().predict(model, data, params)

    def input_schema(self, model, example):
        from mlflow.types.schema import ColSpec, DataType, Schema

        columns = []
        for column, spec in self.settings["features"].items():
            if spec["kind"] == "numeric":
                kind = DataType.double
            else:
                kind = DataType.string if spec["dtype"] == "string" else DataType.long
            columns.append(ColSpec(kind, column))
        return Schema(columns)

    @staticmethod
    def example_frame(example_inputs):
        """Table rows from the recipe's example inputs (a dict of (n, 1) arrays)."""
        import pandas as pd

        return pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in example_inputs.items()})


class Text(Adapter):
    """Raw texts in, vectorized with the training vocabulary into the token ids the model takes.

    Settings: `vocabulary` (id -> token, id 0 padding, id 1 out of vocabulary), `sequence_length`.
    """

    kind = "text"
    column = "text"

    def inputs(self, model, data):
        from zoo.datasets import text_ids

        frame = _frame(data, [self.column])
        if self.column not in frame.columns:
            raise _bad(f"Missing column '{self.column}'; the model takes raw texts in a '{self.column}' column.")
        # The mapping training used (TextVectorization's, in NumPy on every backend), so a model
        # trained on JAX or PyTorch serves without TensorFlow.
        # An empty cell (None from JSON null, NaN) is an empty text, as `fillna("")` made it; cell by
        # cell, because fillna("") on an all-NaN float column is deprecated in pandas (and a cell
        # may hold a list, which `pd.isna` answers with an array).
        texts = [
            "" if text is None or (isinstance(text, float) and text != text) else str(text)
            for text in frame[self.column]
        ]
        return text_ids.encode(text_ids.tokenize(texts), self.settings["vocabulary"], self.settings["sequence_length"])

    def input_schema(self, model, example):
        from mlflow.types.schema import ColSpec, DataType, Schema

        return Schema([ColSpec(DataType.string, self.column)])


class Caption(Tensor):
    """Images in, captions out: the greedy decoder's tokens turned into text with the vocabulary.

    Settings: `vocabulary` (token strings by id).
    """

    kind = "caption"
    former_answer = "columns"

    def columns(self, array, data):
        import pandas as pd

        from zoo.datasets import sequences

        return pd.DataFrame({"caption": sequences.decode_tokens(array.argmax(-1), self.settings["vocabulary"])})


class Lines(Tensor):
    """Text-line images (raw pixels 0-255, padded to the model's width) in, the text read out.

    The CTC output is decoded greedily inside, so the served model answers with strings: columns
    `text` and `confidence` (the product of the chosen characters' probabilities). Settings:
    `alphabet` (the characters, in the order of the model's classes after the blank).
    """

    kind = "ocr"
    former_answer = "columns"

    def columns(self, array, data):
        import pandas as pd

        from zoo.models import crnn

        texts, confidences = crnn.decode(array, self.settings["alphabet"])
        return pd.DataFrame({"text": texts, "confidence": np.asarray(confidences, dtype="float64")})


class Generator(Adapter):
    """Rows of `label` (conditional GANs) and `seed` in, one generated image per row out (0-255).

    The latent vector of a row is drawn from `seed` (default: the row's position), so the same
    request gives the same images. Settings: `latent_dim`, `num_classes` (0: unconditional).
    """

    kind = "generator"

    def inputs(self, model, data):
        seeds, labels = self.rows(data)
        latent = np.stack(
            [np.random.default_rng(int(seed)).standard_normal(self.settings["latent_dim"]) for seed in seeds]
        ).astype("float32")
        if labels is None:
            return latent
        return {"latent": latent, "label": labels.astype("int32").reshape(-1, 1)}

    def rows(self, data):
        """(seeds as ints, labels as an int64 array or None) of the request's rows."""
        import pandas as pd

        classes = self.settings["num_classes"]
        columns = ["label", "seed"] if classes else ["seed"]
        frame = _frame(data, columns)
        if classes and "label" not in frame.columns:
            raise _bad(f"Missing column 'label': this generator is conditional (labels 0 to {classes - 1}).")
        if not classes and "label" in frame.columns and frame["label"].notna().any():
            raise _bad("This generator is unconditional (trained without labels): drop the 'label' column.")
        seeds = frame["seed"] if "seed" in frame.columns else pd.Series(np.arange(len(frame)))
        seeds = _whole_numbers(seeds, "seed", "seeds 0 or more (or none: the row's position)", 0, 2**63 - 1)
        seeds = seeds.fillna(pd.Series(np.arange(len(frame)), index=seeds.index))
        if not len(seeds):
            raise _bad("The request holds no rows: send at least one.")
        seeds = [int(seed) for seed in seeds]  # Python ints: 2**63 - 1 does not fit int64 after float64
        if not classes:
            return seeds, None
        labels = _whole_numbers(frame["label"], "label", f"class numbers 0 to {classes - 1}", None, None)
        if labels.isna().any():
            raise _bad(f"Column 'label' takes class numbers 0 to {classes - 1}; a row has none.")
        labels = labels.to_numpy(dtype="float64")
        bad = labels[(labels < 0) | (labels >= classes)]
        if len(bad):
            raise _bad(f"Label {bad[0]:g} is out of range: this generator knows labels 0 to {classes - 1}.")
        return seeds, labels.astype("int64")

    def array(self, model, raw, data):
        from zoo.datasets import images

        return (raw * images.PIXEL_MAX).astype("float32")

    def columns(self, array, data):
        """`seed` (the latent vector's), `label` (conditional) and `image` (height x width x channels)."""
        import pandas as pd

        seeds, labels = self.rows(data)
        frame = pd.DataFrame({"seed": seeds})
        if labels is not None:
            frame[LABEL] = labels
        frame["image"] = list(array.astype("float64"))
        return frame

    def input_schema(self, model, example):
        from mlflow.types.schema import ColSpec, DataType, Schema

        columns = [ColSpec(DataType.long, "seed", required=False)]
        if self.settings["num_classes"]:
            columns.insert(0, ColSpec(DataType.long, "label"))
        return Schema(columns)

    def example(self, count=4):
        import pandas as pd

        rows = {"seed": np.arange(count, dtype="int64")}
        if self.settings["num_classes"]:
            rows = {"label": np.arange(count, dtype="int64") % self.settings["num_classes"], **rows}
        return pd.DataFrame(rows)


class Forecast(Tensor):
    """Raw windows (batch, steps, features) in; each window's forecasts and interval bounds out.

    One row per window: `forecast_1` ... `forecast_H` (the last step's outputs), and with an
    interval `lower_1` ... `upper_H` (forecast -+ the conformal half width of that step).
    Settings: `interval`, None or {"level", "half_width": one per step}.
    """

    kind = "forecast"
    former_answer = "columns"

    def columns(self, array, data):
        import pandas as pd

        values = np.asarray(array, dtype="float64")[:, -1, :]
        steps = range(1, values.shape[1] + 1)
        columns = {f"forecast_{h}": values[:, h - 1] for h in steps}
        interval = self.settings.get("interval")
        if interval:
            half = np.asarray(interval["half_width"], dtype="float64")
            columns |= {f"lower_{h}": values[:, h - 1] - half[h - 1] for h in steps}
            columns |= {f"upper_{h}": values[:, h - 1] + half[h - 1] for h in steps}
        return pd.DataFrame(columns)


def _whole_numbers(values, column, takes, low, high):
    """`values` (a Series) as float64 whole numbers in [low, high] (None: unbounded), NaN where empty.

    Raises:
        MlflowException: naming `column` and what it `takes`, for text, fractions, infinities or
            numbers out of range.
    """
    import pandas as pd

    cells = values.astype(object).where(values.notna(), None)
    try:
        numbers = pd.to_numeric(cells, errors="raise").astype("float64")
    except (TypeError, ValueError, OverflowError):
        raise _bad(f"Column '{column}' takes {takes}; received {values.dropna().iloc[0]!r}.") from None
    present = numbers.dropna().to_numpy()
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(present) | (present != np.round(present))
        if low is not None:
            bad |= present < low
        if high is not None:
            bad |= present > high
    if bad.any():
        raise _bad(f"Column '{column}' takes {takes}; received {present[bad][0]:g}.")
    return numbers


ADAPTERS = {cls.kind: cls for cls in (Tensor, Table, Text, Caption, Lines, Generator, Forecast)}

# One request per kind, as `curl` sends it (README and `zoo serve` print these).
REQUESTS = {
    "tensor": '{"inputs": [[[0, 0, 255, 128, 0, 0, 0, 0], ...]]}',
    "table": '{"dataframe_records": [{"gre": 380, "gpa": 3.61, "rank": 3, "city": "Oslo"}]}',
    "text": '{"dataframe_records": [{"text": "a moving, beautifully acted film"}]}',
    "caption": '{"inputs": [[[[0], [0], [255], ...]]]}',
    "ocr": '{"inputs": [[[[0], [0], [255], ...]]]}',
    "forecast": '{"inputs": [[[139.1], [103.2], [86.4], ...]]}',
    "generator": '{"dataframe_records": [{"label": 7, "seed": 0}, {"label": 7, "seed": 1}]}',
}


# === The pyfunc model ===


class ServedModel:
    """What `mlflow.pyfunc.load_model` wraps: the Keras model behind its adapter."""

    def __init__(self, model, adapter):
        self.model = model
        self.adapter = adapter

    def predict(self, data, params=None):
        return self.adapter.predict(self.model, data, params)

    def get_raw_model(self):
        return self.model


def _load_pyfunc(data_path):
    """MLflow's loader hook: `data_path` is the model's `data` folder."""
    from zoo import quiet

    # In `mlflow models serve`: TensorFlow's native start-up lines (CUDA, oneDNN) off the log, and
    # not one Keras warning per column and request.
    quiet.load_tensorflow()
    quiet.keras_dict_keys()
    import keras

    from zoo import registry

    registry.names()  # imports the zoo's models, so their custom classes (GAN, RBM) deserialize
    with open(os.path.join(data_path, SERVING_FILE)) as handle:
        config = json.load(handle)
    model = keras.saving.load_model(os.path.join(data_path, MODEL_FILE))
    return ServedModel(model, ADAPTERS[config["kind"]](**config.get("settings", {})))


def save_model(
    path, mlflow_model, keras_model, adapter, signature=None, pip_requirements=None, request=None, **_options
):
    """Write an MLflow model folder with the `keras` and the zoo `python_function` flavors.

    Called by `mlflow.models.Model.log(..., flavor=zoo.serving)`. `request` (a raw request of a
    row or two) is saved as the model's input example (`input_example.json` and
    `serving_input_example.json`, which the MLflow UI and `zoo serve` show). It is saved here, not
    passed to `log_model` as `input_example`: MLflow then reloads the model to check the example,
    which failed for Keras models (FileNotFoundError on input_example.json).
    """
    import keras
    import yaml
    from mlflow import pyfunc
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.utils.environment import (
        _CONDA_ENV_FILE_NAME,
        _PYTHON_ENV_FILE_NAME,
        _REQUIREMENTS_FILE_NAME,
        _process_pip_requirements,
        _PythonEnv,
    )
    from mlflow.utils.file_utils import get_total_file_size, write_to

    data = os.path.join(path, DATA_DIR)
    os.makedirs(data)
    keras_model.save(os.path.join(data, MODEL_FILE))
    # mlflow.keras.load_model reads the module name here.
    write_to(os.path.join(data, "keras_module.txt"), "keras")
    with open(os.path.join(data, SERVING_FILE), "w") as handle:
        json.dump({"kind": adapter.kind, "settings": adapter.settings}, handle, indent=1)
    if signature is not None:
        mlflow_model.signature = signature
    if request is not None:
        from mlflow.models.utils import _save_example

        _save_example(mlflow_model, request, path)
    # The same layout and options as mlflow.keras.save_model: `mlflow.keras.load_model` works.
    mlflow_model.add_flavor(
        "keras",
        data=DATA_DIR,
        keras_version=keras.__version__,
        keras_backend=keras.backend.backend(),
        save_exported_model=False,
    )
    pyfunc.add_to_model(
        mlflow_model,
        loader_module="zoo.serving",
        data=DATA_DIR,
        conda_env=_CONDA_ENV_FILE_NAME,
        python_env=_PYTHON_ENV_FILE_NAME,
    )
    if size := get_total_file_size(path):
        mlflow_model.model_size_bytes = size
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))
    conda_env, requirements, _ = _process_pip_requirements([], pip_requirements or [], None)
    with open(os.path.join(path, _CONDA_ENV_FILE_NAME), "w") as handle:
        yaml.safe_dump(conda_env, stream=handle, default_flow_style=False)
    write_to(os.path.join(path, _REQUIREMENTS_FILE_NAME), "\n".join(requirements))
    _PythonEnv.current().to_yaml(os.path.join(path, _PYTHON_ENV_FILE_NAME))


def log_model(model, adapter, example, metadata=None):
    """Log `model` behind `adapter` as the active run's `model`, with the signature of `example`.

    Args:
        model: the Keras model.
        adapter: an `Adapter` (what the served model takes and gives).
        example: a raw request of a few rows (an array, or a DataFrame for tables, texts, GANs).
        metadata: stored in the MLmodel file (class names, image shape, ...).

    Returns:
        MLflow's `ModelInfo`.
    """
    import sys

    import keras
    import mlflow

    import zoo

    metadata = {**(metadata or {}), "zoo_serving": adapter.kind, "zoo_version": zoo.__version__}
    name_classes(adapter, model, example, metadata.get("class_names"))
    adapter.settings["answer"] = COLUMNS
    return mlflow.models.Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        keras_model=model,
        adapter=adapter,
        signature=adapter.signature(model, example),
        request=first_rows(example),
        # MLflow would load the model back and predict on the example (seconds per run): the
        # signature was computed on the same rows through the same adapter a moment ago.
        validate_serving_input=False,
        metadata=metadata,
        # The loader is this package: it must be installed where the model is served (--env-manager local).
        pip_requirements=[*_backend_requirements(), f"keras=={keras.__version__}"],
    )


def name_classes(adapter, model, example, class_names):
    """Save `class_names` in the adapter's settings where they name the model's output columns.

    A classifier's answer is then one probability column per class name and `label`; the names
    travel in `serving.json`. A generator's class names name its inputs, and per-step outputs
    (many-to-many) stay arrays: neither is changed.
    """
    if not class_names or adapter.kind not in ("tensor", "table", "text") or "classes" in adapter.settings:
        return
    width = adapter.predict(model, example, {OUTPUT_PARAM: ARRAY}).shape
    if len(width) == 2 and (width[1] == len(class_names) or (width[1] == 1 and len(class_names) == 2)):
        adapter.settings["classes"] = [str(name) for name in class_names]


def first_rows(example, count=1):
    """The first `count` rows of a raw request (an array, a DataFrame or a dict of arrays)."""
    if isinstance(example, dict):
        return {key: np.asarray(value)[:count] for key, value in example.items()}
    if hasattr(example, "iloc"):
        return example.iloc[:count].reset_index(drop=True)
    return np.asarray(example)[:count]


def example_request(model_uri):
    """The JSON body of a request built from the model's own input example, or None without one."""
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    info = mlflow.models.get_model_info(model_uri).saved_input_example_info or {}
    path = info.get("serving_input_path")
    if not path:
        return None
    try:
        # The model's own repository: `models:/m-ID` (a logged model) is no `models:/NAME/VERSION`
        # that a path could be appended to.
        repository = get_artifact_repository(model_uri)
        with tempfile.TemporaryDirectory() as folder:
            with open(repository.download_artifacts(path, dst_path=folder)) as handle:
                return json.dumps(json.load(handle), separators=(",", ":"))
    except (MlflowException, OSError, ValueError):
        return None


def answer_layout(signature):
    """What the server answers, in a line or two from the model's signature, or None without one.

    e.g. 'the answer: {"predictions": [{"0": ..., "1": ..., "label": ...}]}, one object per row; ...'
    """
    outputs = getattr(signature, "outputs", None)
    if outputs is None:
        return None
    if outputs.has_input_names():
        names = outputs.input_names()
        shown = ", ".join(f'"{name}": ...' for name in names[:6]) + (", ..." if len(names) > 6 else "")
        answer = f'the answer: {{"predictions": [{{{shown}}}]}}, one object per row'
    else:
        answer = 'the answer: {"predictions": [...]}, an array with one entry per row'
    params = getattr(signature, "params", None)
    if params is not None and OUTPUT_PARAM in [param.name for param in params.params]:
        answer += f'; add "params": {{"{OUTPUT_PARAM}": "{ARRAY}"}} to the body for the model\'s array'
    return answer


def _backend_requirements():
    """The backend packages the model was trained with, pinned; TensorFlow only where it is loaded."""
    import importlib.metadata

    import keras

    # A model trained on JAX or PyTorch is served by that backend: a JAX-only machine has no TensorFlow.
    backend = keras.backend.backend()
    packages = {"tensorflow": ["tensorflow"], "jax": ["jax", "jaxlib"], "torch": ["torch"]}.get(backend, [])
    if "tensorflow" in sys.modules and backend != "tensorflow":
        packages.append("tensorflow")
    return [f"{name}=={importlib.metadata.version(name)}" for name in packages]
