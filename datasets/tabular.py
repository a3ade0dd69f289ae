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

from zoo.datasets import splits
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
    # Columns left out of the features, with why: {column: reason} (`unusable_columns`).
    dropped: dict = dataclasses.field(default_factory=dict)
    # Rows left out because their target cell is empty.
    empty_targets: int = 0

    @property
    def num_train(self):
        return len(self.train)

    def arrays(self, frame):
        """Return (inputs, labels): a dict of (n, 1) arrays keyed by column, and the label vector."""
        inputs = {}
        for column, spec in self.features.items():
            values = frame[column]
            if spec["kind"] == "numeric":
                inputs[column] = values.to_numpy(dtype="float32").reshape(-1, 1)
            elif spec["dtype"] == "string" and spec.get("codes"):
                inputs[column] = category_codes(values, spec["vocabulary"]).reshape(-1, 1)
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


def category_codes(values, vocabulary):
    """Integer codes of text categories: a value's index in `vocabulary` + 1, 0 for one never seen.

    The NumPy twin of `StringLookup(output_mode="one_hot")`'s columns (slot 0 out of vocabulary),
    used where the model takes codes (`codes` in a feature spec): the pipeline off TensorFlow and
    `zoo.serving.Table` on raw rows apply this same mapping.

    Args:
        values: the cells (any sequence; read as text).
        vocabulary: the training split's categories, in the order of their columns.

    Returns:
        An int64 array of one code per cell.
    """
    import pandas as pd

    cells = pd.Series(np.asarray(values, dtype=object).reshape(-1)).astype(str)
    # Categorical codes are -1 for a value outside the categories: + 1 makes that the 0 slot.
    return pd.Categorical(cells, categories=[str(v) for v in vocabulary]).codes.astype("int64") + 1


def known_categories(cells, vocabulary):
    """`cells` (an array) with every value outside `vocabulary` replaced by its first category."""
    cells = np.asarray(cells)
    known = np.isin(cells.astype(str), [str(v) for v in vocabulary])
    if known.all() or not len(vocabulary):
        return cells
    # Object, not a fixed-width text dtype, which would cut a longer category short.
    replaced = cells.astype(object) if cells.dtype.kind in "USO" else cells.copy()
    replaced[~known] = vocabulary[0]
    return replaced


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
    return check_target(read_frame(path), target, path)


def check_target(frame, target, path):
    """A `Table` of `frame` read from `path`, once its target column is known to be there.

    Raises:
        ZooError: for no target or a target that is not a column.
    """
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


def read_frame(path, nrows=None):
    """Read the CSV file given to --data (its first `nrows` rows if given) into a DataFrame with a data row.

    Raises:
        ZooError: for a missing, unparsable or empty file, or a folder.
    """
    import pandas as pd

    if not os.path.exists(path):
        raise ZooError(f"CSV file not found: {path}. Check the path given to `data`.")
    if os.path.isdir(path):
        raise ZooError(f"{path} is a folder, not a CSV file. Pass the path of a .csv file to `data`.")
    check_header(path)
    try:
        frame = pd.read_csv(path, skipinitialspace=True, nrows=nrows)
    except pd.errors.EmptyDataError:
        raise ZooError(f"CSV file is empty: {path}. It needs a header row and data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0]
        raise ZooError(f"Cannot parse {path} as CSV ({first}). Check the file's format.") from None
    if frame.empty:
        raise ZooError(f"CSV file has a header but no data rows: {path}. Add rows to train on.")
    return frame


def read_binary_csv(path, target=None, drop=()):
    """Read a CSV of numeric columns in [0, 1] (the visible units) and an optional label column.

    Returns:
        dict with x (float32, rows x columns), y (int64 labels or None), columns, class_names,
        source and name.

    Raises:
        ZooError: for a missing or unparsable file, an unknown column, a non-numeric column, a
            missing value, or a value outside [0, 1] (each named with its row and column).
    """
    import pandas as pd

    from zoo.errors import closest

    frame = read_frame(path)
    for column in list(drop) + ([target] if target else []):
        if column not in frame.columns:
            raise ZooError(
                f"Column '{column}' is not in {path}.{closest(column, frame.columns)} "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
    y, class_names = None, None
    if target:
        labels = frame[target].astype(str)
        class_names = sorted(labels.unique())
        y = labels.map({name: i for i, name in enumerate(class_names)}).to_numpy(dtype="int64")
    visible = frame.drop(columns=list(drop) + ([target] if target else []))
    if visible.shape[1] == 0:
        raise ZooError(f"{path} has no columns left for the visible units after `drop`/`target`.")
    for column in visible.columns:
        values = visible[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            if pd.api.types.is_bool_dtype(values):
                visible[column] = values.astype("float32")
                continue
            numbers = pd.to_numeric(values, errors="coerce")
            bad = values[numbers.isna() & values.notna()]
            row = int(bad.index[0]) + 2 if len(bad) else 2
            held = bad.iloc[0] if len(bad) else values.iloc[0]
            raise ZooError(
                f"Column '{column}' of {path} is not numeric (row {row} holds {held!r}); "
                f"an RBM needs numeric columns in [0, 1]. Encode it, or leave it out with `drop={column}`."
            )
    values = visible.to_numpy(dtype="float64")
    missing = np.argwhere(np.isnan(values))
    if len(missing):
        row, column = missing[0]
        raise ZooError(
            f"{path} has a missing value at row {row + 2}, column '{visible.columns[column]}'; "
            "fill it (0 or 1) or drop the row."
        )
    outside = np.argwhere((values < 0) | (values > 1))
    if len(outside):
        row, column = outside[0]
        raise ZooError(
            f"{path}: row {row + 2}, column '{visible.columns[column]}' holds {values[row, column]:g}, outside "
            f"[0, 1] ({len(outside)} such value(s)); an RBM's visible units are binary: scale or binarize "
            "the data first (e.g. 1 for a rating >= 4)."
        )
    return {
        "x": values.astype("float32"),
        "y": y,
        "columns": [str(c) for c in visible.columns],
        "class_names": class_names,
        "source": os.path.abspath(path),
        "name": os.path.splitext(os.path.basename(path))[0],
    }


def check_header(path):
    """Refuse a header that names a column twice, or a first data row wider than the header.

    pandas would silently call the second name `gpa.1`, and would take the leading cells of every row
    for its index when the first data row has more cells than the header: each column would then hold
    its neighbour's values.
    """
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            rows = csv.reader(handle, skipinitialspace=True)
            header = next(rows, [])
            first, line = next(((row, rows.line_num) for row in rows if row), ([], 0))
    except (OSError, csv.Error):
        return  # pandas reads the file next and reports what is wrong with it
    seen = set()
    for name in (name.strip() for name in header):
        if name and name in seen:
            raise ZooError(f"The header of {path} names the column '{name}' twice. Rename or drop one of them.")
        seen.add(name)
    if header and len(first) > len(header):
        raise ZooError(
            f"Line {line} of {path} has {len(first)} cells but the header names {len(header)} column(s). "
            "Name every column in the header, or remove the extra cells."
        )


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
            kinds[column] = text_column_kind(column, len(present), int(numbers.notna().sum()), bad)
    if not kinds:
        raise ZooError(f"The table has no feature columns besides the target '{target}'.")
    return kinds


def text_column_kind(column, present, parsed, bad):
    """The kind of a column read as text: numeric if every cell parses, categorical if many do not.

    Args:
        column: its name.
        present: cells that are not empty.
        parsed: cells among them that parse as numbers.
        bad: the cells that do not parse (a Series indexed by 0-based data row; only the first is read).

    Raises:
        ZooError: when most cells are numbers and some are not: a typo in a numeric column.
    """
    if len(bad) and parsed / max(1, present) >= 0.5:
        raise ZooError(
            f"Column '{column}' is numeric but row {bad.index[0] + 2} holds {bad.iloc[0]!r}, which is not "
            f"a number. Fix that cell, or treat the column as categorical with "
            f"`categorical={column}`."
        )
    return "categorical" if len(bad) else "numeric"


def task_and_classes(values, task="auto"):
    """(task, class names) of a target: `task` checked against the values, or inferred for 'auto'.

    Args:
        values: the target column without empty cells, or only its distinct values (same dtype).
        task: 'auto', 'binary', 'multiclass' or 'regression'.

    Raises:
        ZooError: for one class, a binary task on more classes, or a regression on text.
    """
    import pandas as pd

    inferred = infer_task(values)
    task = inferred if task == "auto" else task
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(values):
            raise ZooError(f"`task=regression` needs a numeric target; '{values.name}' is not numeric.")
        return task, []
    class_names = sorted(values.unique().tolist(), key=str)
    if task == "binary" and len(class_names) != 2:
        raise ZooError(
            f"`task=binary` needs a target with 2 classes; '{values.name}' has {len(class_names)}. "
            "Use `task=multiclass`."
        )
    return task, class_names


def check_options(columns, categorical, missing):
    """Refuse `categorical` columns the table lacks and an unknown `missing` policy.

    Raises:
        ZooError: naming the unknown columns (with the table's columns) or the bad policy.
    """
    unknown = [column for column in categorical if column not in columns]
    if unknown:
        raise ZooError(
            f"`categorical` names column(s) not in the table: {', '.join(unknown)}. "
            f"Columns: {', '.join(map(str, columns))}."
        )
    if missing not in ("mean", "error"):
        raise ZooError(f"`missing` must be mean or error. Received: {missing!r}")


def prepare(
    table,
    *,
    task="auto",
    categorical=(),
    seed=42,
    validation_fraction=0.1,
    test_fraction=0.1,
    missing="mean",
    text_codes=False,
):
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
        text_codes: give the model text categories as integer codes (`category_codes`; the spec
            says `codes: True`), not strings: what JAX and PyTorch need, where Keras' `StringLookup`
            cannot run.

    Returns:
        `TabularSplits`.

    Raises:
        ZooError: for bad columns, an infinite or float32-overflowing number, an empty cell with
            `missing="error"`, a target with one class, or too few rows to split.
    """
    import pandas as pd

    frame = table.frame
    check_options(frame.columns, categorical, missing)
    empty_targets = check_empty_targets(frame[table.target], table.name, missing)
    # The index keeps each row's place in the file, for messages that name a row.
    frame = frame[frame[table.target].notna()].copy()
    dropped = unusable_columns(frame, table.target, categorical, keep_empty=missing == "error")
    frame = frame.drop(columns=list(dropped))
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

    task, class_names = task_and_classes(frame[table.target], task)

    train, validation, test = (
        frame.iloc[rows]
        for rows in splits.split_rows(len(frame), seed, validation_fraction, test_fraction, what=table.name)
    )

    features = {}
    for column, kind in kinds.items():
        values = train[column]
        if kind == "numeric":
            mean = float(values.mean()) if values.notna().any() else 0.0
            variance = float(values.var(ddof=0))
            # NaN where the training rows hold no number: a NaN scale would make every output NaN.
            variance = variance if np.isfinite(variance) and variance > 0 else 1.0
            features[column] = {"kind": "numeric", "mean": mean, "variance": variance}
        else:
            is_int = pd.api.types.is_integer_dtype(values)
            vocabulary = sorted(values.dropna().unique().tolist(), key=str)
            features[column] = {
                "kind": "categorical",
                "dtype": "int64" if is_int else "string",
                "vocabulary": [int(v) if is_int else str(v) for v in vocabulary],
            }
            if text_codes and not is_int:
                features[column]["codes"] = True
    # Missing numbers become the training mean, so the normalized value is 0.
    numeric = [c for c, f in features.items() if f["kind"] == "numeric"]
    counts = {c: int(n) for c, n in frame[numeric].isna().sum().items() if n}
    filled = [split.fillna({c: features[c]["mean"] for c in numeric}) for split in (train, validation, test)]
    return TabularSplits(
        *filled,
        table.target,
        task,
        class_names,
        features,
        table,
        filled=counts,
        dropped=dropped,
        empty_targets=empty_targets,
    )


# A text column with more distinct values than this, and more than half as many as rows, is an
# identifier (a name, an id, a timestamp): each test row holds a category training never saw.
ID_MIN_LEVELS = 20
EMPTY_COLUMN = "empty in every row"


def unusable_columns(frame, target, categorical=(), keep_empty=False):
    """Feature columns a model cannot learn from, left out with the reason: {column: reason}.

    An entirely empty column (its mean is NaN), and a text column that looks like an identifier
    (`ID_MIN_LEVELS`). A column named in `categorical` is kept whatever it holds.

    Args:
        keep_empty: keep empty columns (`missing=error` refuses them next).
    """
    import pandas as pd

    dropped = {}
    for column in frame.columns:
        if column == target or column in categorical:
            continue
        values = frame[column]
        present = values.dropna()
        if present.empty:
            if not keep_empty:
                dropped[column] = EMPTY_COLUMN
            continue
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        if pd.to_numeric(present.astype(str), errors="coerce").notna().mean() >= 0.5:
            continue  # a numeric column, with or without typos: `column_kinds` judges it
        levels = present.astype(str).nunique()
        if levels > ID_MIN_LEVELS and levels * 2 > len(present):
            dropped[column] = f"an identifier: {levels} distinct texts in {len(present)} rows"
    return dropped


def dropped_message(name, dropped):
    """The line that says which columns of table `name` were left out and why."""
    shown = "; ".join(f"'{column}' ({reason})" for column, reason in dropped.items())
    hints = []
    identifier = next((column for column, reason in dropped.items() if reason != EMPTY_COLUMN), None)
    if identifier is not None:
        hints.append(f"--categorical {identifier} keeps it as a category")
    if EMPTY_COLUMN in dropped.values():
        hints.append("--missing error refuses an empty column instead")
    return f"zoo: left out column(s) of {name} a model cannot learn from: {shown}; {', '.join(hints)}."


def check_empty_targets(values, name, missing):
    """Count the rows whose target cell is empty (they are left out); refuse them with `missing=error`.

    Raises:
        ZooError: with `missing="error"`, naming the count and the first such row.
    """
    empty = np.flatnonzero(values.isna().to_numpy())
    if len(empty) and missing == "error":
        raise empty_targets_error(values.name, name, len(empty), values.index[empty[0]])
    return len(empty)


def empty_targets_error(column, name, count, row):
    """The error of `missing=error` for `count` empty target cells, the first at 0-based data row `row`."""
    return ZooError(
        f"Target column '{column}' of {name} is empty in {count} row(s), the first at row {row + 2}, and "
        "`missing=error` refuses them: fill them, or use `missing=mean` to leave those rows out (counted)."
    )


# float32 is what the model computes in: a larger number overflows to infinity there.
FLOAT32_MAX = float(np.finfo("float32").max)


def _check_finite(frame, column, name):
    """Refuse infinite numbers and numbers float32 cannot hold: a model trains on them to a constant.

    Raises:
        ZooError: naming the column, the first bad row and how many cells are bad.
    """
    bad = nonfinite_cells(frame[column])
    if len(bad):
        raise nonfinite_error(column, name, bad.iloc[0], bad.index[0], len(bad))


def nonfinite_cells(values):
    """The cells of a column (a Series) that are infinite or overflow float32, as numbers."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    with np.errstate(invalid="ignore"):
        return numbers[np.isinf(numbers) | (numbers.abs() > FLOAT32_MAX)]


def nonfinite_error(column, name, value, row, count):
    """The error for `count` infinite or overflowing cells of `column`, the first `value` at 0-based data row `row`."""
    return ZooError(
        f"Column '{column}' of {name} holds {value:g} at row {row + 2} ({count} such "
        f"cell(s)): a model cannot learn from infinite or float32-overflowing numbers. Fix or drop those rows."
    )


def _refuse_missing(frame, columns, name):
    for column in columns:
        empty = np.flatnonzero(frame[column].isna().to_numpy())
        if len(empty):
            raise missing_error(column, name, len(empty), frame.index[empty[0]])


def missing_error(column, name, count, row):
    """The error of `missing=error` for `count` empty cells of `column`, the first at 0-based data row `row`."""
    return ZooError(
        f"Column '{column}' of {name} has {count} empty cell(s), the first at row "
        f"{row + 2}, and `missing=error` refuses them: fill them, or use `missing=mean` "
        "to fill numbers with the training mean."
    )
