"""Tabular data: CSV files, the scikit-learn tables, and the admissions table shipped in this package.

The loader reads the table, infers which columns are numeric and which are categorical, infers the
task from the target column, splits the rows deterministically, and computes the statistics the
MLP's preprocessing layers need on the training split only.
"""

from __future__ import annotations

import dataclasses
import os
import typing

import numpy as np

from zoo.errors import ZooError

# pandas is imported in the functions that use it: the MLP recipe imports this module to describe
# its options, and `zoo --help` need not wait for pandas.
if typing.TYPE_CHECKING:
    import pandas as pd

# scikit-learn loaders for real tables that are installed with scikit-learn (no download).
SKLEARN_TABLES = {
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
}
# CSV files shipped in this package (zoo/datasets/data/), with their target column. admissions:
# graduate-school admissions from the UCLA statistics examples (400 rows: admit, gre, gpa, rank),
# the table of the course's classic two-layer network.
PACKAGED_TABLES = {"admissions": "admit"}
EMBEDDED = list(SKLEARN_TABLES) + list(PACKAGED_TABLES)
# Integer columns with at most this many distinct values are categorical (e.g. `rank` 1-4).
MAX_INTEGER_LEVELS = 10
# An integer target with at most this many distinct values is a class label, not a quantity.
MAX_CLASSES = 20


@dataclasses.dataclass
class Table:
    """A tabular dataset ready to split: the frame, its target, and where it came from."""

    frame: pd.DataFrame
    target: str
    source: str
    name: str


@dataclasses.dataclass
class TabularSplits:
    """Train/validation/test frames plus everything the model and the logs need."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    target: str
    task: str
    class_names: list
    features: dict
    table: Table
    # Empty cells of each numeric column that were filled with the training mean.
    filled: dict = dataclasses.field(default_factory=dict)

    def arrays(self, frame):
        """Return (inputs, labels): a dict of (n, 1) arrays keyed by column, and the label vector."""
        inputs = {}
        for column, spec in self.features.items():
            values = frame[column]
            if spec["kind"] == "numeric":
                inputs[column] = values.to_numpy(dtype="float32").reshape(-1, 1)
            elif spec["dtype"] == "string":
                inputs[column] = values.astype(str).to_numpy().reshape(-1, 1)
            else:
                inputs[column] = values.to_numpy(dtype="int64").reshape(-1, 1)
        return inputs, self.labels(frame)

    def labels(self, frame):
        y = frame[self.target]
        if self.task == "regression":
            return y.to_numpy(dtype="float32")
        index = {name: i for i, name in enumerate(self.class_names)}
        return y.map(index).to_numpy(dtype="int64" if self.task == "multiclass" else "float32")


def load_embedded(name):
    """Load one of scikit-learn's bundled tables as a `Table`.

    Raises:
        ZooError: for a name that is not bundled.
    """
    if name not in EMBEDDED:
        from zoo.errors import closest

        raise ZooError(
            f"Unknown embedded table '{name}'.{closest(name, EMBEDDED)} "
            f"Choose one of: {', '.join(EMBEDDED)}, or pass `data=PATH.csv` `target=COLUMN`."
        )
    if name in PACKAGED_TABLES:
        return read_csv(packaged_path(name), PACKAGED_TABLES[name])
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, SKLEARN_TABLES[name])(as_frame=True)
    frame = bunch.frame.copy()
    target = "target"
    if name != "diabetes":
        # Class names make logged predictions readable: "malignant" rather than 0.
        names = np.asarray(bunch.target_names)
        frame[target] = names[frame[target].to_numpy()]
    return Table(frame, target, f"sklearn.datasets.{SKLEARN_TABLES[name]}", name)


def packaged_path(name):
    """The path of a CSV table shipped inside the package, e.g. `packaged_path("admissions")`."""
    import importlib.resources

    return str(importlib.resources.files("zoo.datasets").joinpath("data", f"{name}.csv"))


def read_csv(path, target):
    """Read a CSV into a `Table`, checking that it is usable.

    Raises:
        ZooError: for a missing, unreadable or empty file, or a missing target column.
    """
    frame = read_frame(path)
    if target is None:
        raise ZooError(
            f"No target column given for {path}. Pass `target=COLUMN`; columns: {', '.join(map(str, frame.columns))}."
        )
    if target not in frame.columns:
        from zoo.errors import closest

        raise ZooError(
            f"Target column '{target}' is not in {path}.{closest(target, frame.columns)} "
            f"Columns: {', '.join(map(str, frame.columns))}."
        )
    return Table(frame, target, os.path.abspath(path), os.path.splitext(os.path.basename(path))[0])


def read_frame(path):
    """Read the CSV file given to --data into a DataFrame with at least one data row.

    Raises:
        ZooError: for a missing, unparsable or empty file, or a folder.
    """
    import pandas as pd

    if not os.path.exists(path):
        raise ZooError(f"CSV file not found: {path}. Check the path given to `data`.")
    if os.path.isdir(path):
        raise ZooError(f"{path} is a folder, not a CSV file. Pass the path of a .csv file to `data`.")
    _check_header(path)
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ZooError(f"CSV file is empty: {path}. It needs a header row and data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0]
        raise ZooError(f"Cannot parse {path} as CSV ({first}). Check the file's format.") from None
    if frame.empty:
        raise ZooError(f"CSV file has a header but no data rows: {path}. Add rows to train on.")
    return frame


def _check_header(path):
    """Refuse a header that names a column twice: pandas would silently call the second `gpa.1`."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            header = next(csv.reader(handle, skipinitialspace=True), [])
    except (OSError, csv.Error):
        return  # pandas reads the file next and reports what is wrong with it
    seen = set()
    for name in (name.strip() for name in header):
        if name and name in seen:
            raise ZooError(f"The header of {path} names the column '{name}' twice. Rename or drop one of them.")
        seen.add(name)


def infer_task(series):
    """Return 'binary', 'multiclass' or 'regression' for a target column."""
    import pandas as pd

    values = series.dropna()
    levels = values.nunique()
    if levels < 2:
        raise ZooError(
            f"Target column '{series.name}' has only {levels} distinct value(s); "
            "a model needs at least two classes (or varying values for regression)."
        )
    if levels == 2:
        return "binary"
    if pd.api.types.is_float_dtype(values) and not np.all(np.mod(values, 1) == 0):
        return "regression"
    if pd.api.types.is_numeric_dtype(values) and levels > MAX_CLASSES:
        return "regression"
    return "multiclass"


def column_kinds(frame, target, categorical=()):
    """Return {column: 'numeric' | 'categorical'} for every column but the target.

    Raises:
        ZooError: for a column that mixes numbers with text that does not parse as a number.
    """
    import pandas as pd

    kinds = {}
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        if column in categorical:
            kinds[column] = "categorical"
        elif pd.api.types.is_bool_dtype(values):
            kinds[column] = "categorical"
        elif pd.api.types.is_integer_dtype(values) and values.nunique() <= MAX_INTEGER_LEVELS:
            kinds[column] = "categorical"
        elif pd.api.types.is_numeric_dtype(values):
            kinds[column] = "numeric"
        else:
            present = values.dropna().astype(str)
            numbers = pd.to_numeric(present, errors="coerce")
            bad = present[numbers.isna()]
            if len(bad) and numbers.notna().mean() >= 0.5:
                row = bad.index[0]
                raise ZooError(
                    f"Column '{column}' is numeric but row {row + 2} holds {bad.iloc[0]!r}, which is not "
                    f"a number. Fix that cell, or treat the column as categorical with "
                    f"`categorical={column}`."
                )
            kinds[column] = "categorical" if len(bad) else "numeric"
    if not kinds:
        raise ZooError(f"The table has no feature columns besides the target '{target}'.")
    return kinds


def prepare(table, *, task="auto", categorical=(), seed=42, validation_fraction=0.1, test_fraction=0.1, missing="mean"):
    """Split a `Table` and compute the MLP's feature spec on the training rows.

    Args:
        table: the loaded `Table`.
        task: 'auto' (infer from the target), 'binary', 'multiclass' or 'regression'.
        categorical: column names to treat as categorical whatever their type.
        seed: seed of the row permutation; the same seed gives the same split.
        validation_fraction: share of rows held out for early stopping.
        test_fraction: share of rows held out for the final test metrics.
        missing: `mean` fills empty numeric cells with the training mean (counted in
            `TabularSplits.filled`); `error` refuses a table with empty feature cells.

    Returns:
        `TabularSplits`.

    Raises:
        ZooError: for bad columns, an infinite or float32-overflowing number, an empty cell with
            `missing="error"`, a target with one class, or too few rows to split.
    """
    import pandas as pd

    frame = table.frame
    unknown = [column for column in categorical if column not in frame.columns]
    if unknown:
        raise ZooError(
            f"`categorical` names column(s) not in the table: {', '.join(unknown)}. "
            f"Columns: {', '.join(map(str, frame.columns))}."
        )
    if missing not in ("mean", "error"):
        raise ZooError(f"`missing` must be mean or error. Received: {missing!r}")
    # The index keeps each row's place in the file, for messages that name a row.
    frame = frame[frame[table.target].notna()].copy()
    kinds = column_kinds(frame, table.target, categorical)
    checked = [c for c, kind in kinds.items() if kind == "numeric"]
    if pd.api.types.is_numeric_dtype(frame[table.target]) and not pd.api.types.is_bool_dtype(frame[table.target]):
        checked.append(table.target)
    for column in checked:
        _check_finite(frame, column, table.name)
    if missing == "error":
        _refuse_missing(frame, list(kinds), table.name)
    for column, kind in kinds.items():
        if kind == "numeric":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float32")
        elif not pd.api.types.is_integer_dtype(frame[column]):
            frame[column] = frame[column].astype(str)

    inferred = infer_task(frame[table.target])
    task = inferred if task == "auto" else task
    if task != "regression":
        class_names = sorted(frame[table.target].unique().tolist(), key=str)
        if task == "binary" and len(class_names) != 2:
            raise ZooError(
                f"`task=binary` needs a target with 2 classes; '{table.target}' has {len(class_names)}. "
                "Use `task=multiclass`."
            )
    else:
        if not pd.api.types.is_numeric_dtype(frame[table.target]):
            raise ZooError(f"`task=regression` needs a numeric target; '{table.target}' is not numeric.")
        class_names = []

    order = np.random.default_rng(seed).permutation(len(frame))
    n_test = max(1, int(round(len(frame) * test_fraction)))
    n_val = max(1, int(round(len(frame) * validation_fraction)))
    if len(frame) - n_test - n_val < 2:
        raise ZooError(f"The table has {len(frame)} rows: too few to split into train, validation and test.")
    test = frame.iloc[order[:n_test]]
    validation = frame.iloc[order[n_test : n_test + n_val]]
    train = frame.iloc[order[n_test + n_val :]]

    features = {}
    for column, kind in kinds.items():
        values = train[column]
        if kind == "numeric":
            mean = float(values.mean()) if values.notna().any() else 0.0
            features[column] = {"kind": "numeric", "mean": mean, "variance": float(values.var(ddof=0) or 1.0)}
        else:
            is_int = pd.api.types.is_integer_dtype(values)
            vocabulary = sorted(values.dropna().unique().tolist(), key=str)
            features[column] = {
                "kind": "categorical",
                "dtype": "int64" if is_int else "string",
                "vocabulary": [int(v) if is_int else str(v) for v in vocabulary],
            }
    # Missing numbers become the training mean, so the normalized value is 0.
    numeric = [c for c, f in features.items() if f["kind"] == "numeric"]
    counts = {c: int(n) for c, n in frame[numeric].isna().sum().items() if n}
    filled = [split.fillna({c: features[c]["mean"] for c in numeric}) for split in (train, validation, test)]
    return TabularSplits(*filled, table.target, task, class_names, features, table, filled=counts)


# float32 is what the model computes in: a larger number overflows to infinity there.
FLOAT32_MAX = float(np.finfo("float32").max)


def _check_finite(frame, column, name):
    """Refuse infinite numbers and numbers float32 cannot hold: a model trains on them to a constant.

    Raises:
        ZooError: naming the column, the first bad row and how many cells are bad.
    """
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.isinf(values) | (np.abs(values) > FLOAT32_MAX))
    if len(bad):
        first = bad[0]
        raise ZooError(
            f"Column '{column}' of {name} holds {values[first]:g} at row {frame.index[first] + 2} ({len(bad)} such "
            f"cell(s)): a model cannot learn from infinite or float32-overflowing numbers. Fix or drop those rows."
        )


def _refuse_missing(frame, columns, name):
    for column in columns:
        empty = np.flatnonzero(frame[column].isna().to_numpy())
        if len(empty):
            raise ZooError(
                f"Column '{column}' of {name} has {len(empty)} empty cell(s), the first at row "
                f"{frame.index[empty[0]] + 2}, and `missing=error` refuses them: fill them, or use `missing=mean` "
                "to fill numbers with the training mean."
            )
