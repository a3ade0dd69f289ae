"""Tables larger than memory: a CSV streamed from disk in chunks, never held whole.

`tabular.read_csv` + `tabular.prepare` load a table into pandas; above `stream_threshold()` bytes
(`ZOO_STREAM_BYTES`, default 64 MB: about a million rows of ten numbers, where the in-memory path
peaks near 3 GB) the MLP recipe reads it through `scan` instead:

1. one pass over every row (in chunks of `CHUNK_ROWS`) counts the rows that have a target and
   infers what `tabular.prepare` infers from the whole frame: column kinds, the target's task and
   classes, missing counts; it checks numbers the same way and stops at the first bad cell, with
   the same one-line message and row number;
2. one pass over the training rows (the split decided row by row by `splits.RowSplit`, from row
   numbers alone) computes the normalization (a chunked mean and variance) and the categorical
   vocabularies, and keeps the validation and test rows (a fifth of the table by default, held as
   arrays for early stopping and the test metrics);
3. every epoch streams the training rows again (`StreamedTable.train_dataset`): chunks are parsed,
   cast and filled like the in-memory path, shuffled within a bounded buffer, never cached.

The result has the same split, statistics and feature spec as `tabular.prepare` on the same file
(tests/test_streaming.py). MLflow's dataset record keeps the source, schema, row count and an MD5
digest of the file's bytes, read in blocks (`mlflow_dataset`).

The reader (`StreamedTable.chunks`, `StreamedTable.batches`) is plain pandas and numpy. On the
TensorFlow backend `train_dataset` wraps it in tf.data (`from_generator`); on JAX and PyTorch the
MLP recipe hands `batches` to a `zoo.training.Stream`, batched by a `keras.utils.PyDataset`
without importing TensorFlow: a JAX- or PyTorch-only install streams the same rows in the same
order, in the same bounded memory.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from zoo.datasets import splits, tabular
from zoo.errors import ZooError

THRESHOLD_ENV = "ZOO_STREAM_BYTES"
DEFAULT_THRESHOLD = 64 * 2**20
CHUNK_ROWS = 65536
# Rows the training stream shuffles among: chunks arrive in file order, so a window of a few chunks
# mixes rows from distant parts of the file while its memory stays fixed (about 20 MB of numbers).
SHUFFLE_ROWS = 4 * CHUNK_ROWS
# Rows per element handed to tf.data, which rebatches them to --batch-size.
SLICE_ROWS = 4096
# Distinct target values kept while inferring the task: past MAX_CLASSES a numeric target is a quantity.
_TARGET_LEVELS = 10000


def stream_threshold():
    """CSV files larger than this many bytes are streamed (`ZOO_STREAM_BYTES`; 0 streams every file).

    Raises:
        ZooError: for a value that is not a whole number of bytes.
    """
    value = os.environ.get(THRESHOLD_ENV, "")
    if not value:
        return DEFAULT_THRESHOLD
    try:
        threshold = int(value)
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise ZooError(f"{THRESHOLD_ENV} must be a number of bytes (0 streams every CSV). Received: {value!r}")
    return threshold


def should_stream(path):
    """Whether the CSV at `path` is large enough to stream (a missing file is left to the usual checks)."""
    return os.path.isfile(path) and os.path.getsize(path) > stream_threshold()


def read_chunks(path, text=()):
    """The data rows of a CSV as DataFrames of at most `CHUNK_ROWS` rows, indexed by row number.

    Args:
        path: the CSV file.
        text: columns read as text in every chunk (those pandas reads as text when it reads the
            file whole), so that a cell keeps its spelling whatever else its chunk holds.

    Raises:
        ZooError: for a row pandas cannot parse, naming the file and the line, as `tabular.read_frame` does.
    """
    import pandas as pd

    tabular.check_header(path)
    dtype = dict.fromkeys(text, "str") or None
    reader = pd.read_csv(path, skipinitialspace=True, chunksize=CHUNK_ROWS, dtype=dtype)
    try:
        with reader:
            yield from reader
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0]
        raise ZooError(f"Cannot parse {path} as CSV ({first}). Check the file's format.") from None


@dataclasses.dataclass
class _Column:
    """What the first pass learns about one column, chunk by chunk (what pandas sees reading it whole)."""

    kinds: set = dataclasses.field(default_factory=set)  # the dtype of each chunk: int, float, bool, str
    levels: set = dataclasses.field(default_factory=set)  # distinct integers, up to MAX_INTEGER_LEVELS + 1
    present: int = 0  # text columns: cells that are not empty
    parsed: int = 0  # text columns: cells that parse as numbers
    bad_text: object = None  # the first text cell that is not a number (a one-cell Series)
    nonfinite: int = 0
    first_nonfinite: tuple | None = None  # (value, row)
    empty: int = 0
    first_empty: int | None = None

    def observe(self, values):
        import pandas as pd

        kind = _kind(values)
        self.kinds.add(kind)
        if kind == "int" and len(self.levels) <= tabular.MAX_INTEGER_LEVELS:
            self.levels.update(values.unique().tolist())
        empty = np.flatnonzero(values.isna().to_numpy())
        if len(empty) and self.first_empty is None:
            self.first_empty = int(values.index[empty[0]])
        self.empty += len(empty)
        if kind == "str":
            present = values.dropna().astype(str)
            numbers = pd.to_numeric(present, errors="coerce")
            self.present += len(present)
            self.parsed += int(numbers.notna().sum())
            if self.bad_text is None and numbers.isna().any():
                self.bad_text = present[numbers.isna()].iloc[:1]
        else:
            self.present += int(values.notna().sum())
            self.parsed += int(values.notna().sum())
        if kind != "bool":
            bad = tabular.nonfinite_cells(values)
            if len(bad) and self.first_nonfinite is None:
                self.first_nonfinite = (bad.iloc[0], int(bad.index[0]))
            self.nonfinite += len(bad)

    @property
    def type(self):
        return _merged(self.kinds)

    def kind(self, column, categorical):
        """The kind `tabular.column_kinds` gives the whole column."""
        if column in categorical or self.type == "bool":
            return "categorical"
        if self.type == "int":
            return "categorical" if len(self.levels) <= tabular.MAX_INTEGER_LEVELS else "numeric"
        if self.type == "float":
            return "numeric"
        bad = self.bad_text if self.bad_text is not None else []
        return tabular.text_column_kind(column, self.present, self.parsed, bad)


@dataclasses.dataclass
class StreamedTable:
    """A CSV too large for memory: its split, statistics and held-out rows, ready to stream.

    Attributes mirror `tabular.TabularSplits` (target, task, class_names, features, filled); the
    validation and test rows are DataFrames, the training rows are streamed by `train_dataset`.
    """

    path: str
    table: tabular.Table  # frame: the first rows only, for the logged signature and MLflow's schema
    target: str
    task: str
    class_names: list
    features: dict
    filled: dict
    split: splits.RowSplit
    validation: object
    test: object
    column_types: dict
    num_rows: int
    converted: object  # a TabularSplits holding the spec, used for its arrays()
    # As in `tabular.TabularSplits`: rows without a target, left out; columns left out (none here:
    # a streamed empty column is a constant feature, and identifiers are not looked for).
    empty_targets: int = 0
    dropped: dict = dataclasses.field(default_factory=dict)

    @property
    def text_columns(self):
        return [c for c, kind in self.column_types.items() if kind == "str"]

    @property
    def num_train(self):
        return self.split.sizes[0]

    def arrays(self, frame):
        """(inputs, labels) of cast rows, as `tabular.TabularSplits.arrays`."""
        return self.converted.arrays(frame)

    def chunks(self, wanted=splits.TRAIN):
        """Cast and filled chunks of the rows of one split, in file order (plain pandas, no TensorFlow)."""
        seen = 0
        for chunk in read_chunks(self.path, self.text_columns):
            chunk = chunk[chunk[self.target].notna()]
            codes = self.split.assign(np.arange(seen, seen + len(chunk)))
            seen += len(chunk)
            rows = chunk[codes == wanted]
            if len(rows):
                yield _fill(_cast(rows, self.features, self.column_types, self.target), self.features)

    def batches(self, seed, epoch):
        """The training rows of one pass, shuffled, as (inputs, labels) slices of `SLICE_ROWS` rows (numpy).

        Chunks arrive in file order: the rows of `SHUFFLE_ROWS` at a time (several chunks) are
        permuted together, seeded by (seed, epoch), so pass e's order depends on nothing else and
        a resume at epoch e reads pass e directly. Memory holds one window, whatever the file's size.
        """
        rng = np.random.default_rng((seed, epoch))
        window, rows = [], 0
        for chunk in self.chunks(splits.TRAIN):
            window.append(self.arrays(chunk))
            rows += len(chunk)
            if rows >= SHUFFLE_ROWS:
                yield from _shuffled_slices(window, rng)
                window, rows = [], 0
        if window:
            yield from _shuffled_slices(window, rng)

    def train_dataset(self, seed):
        """A tf.data.Dataset of the shuffled training slices (`batches`), read from disk on every pass.

        The TensorFlow backend's pipeline; on JAX and PyTorch the recipe hands `batches` to a
        `zoo.training.Stream` instead. Work per row stays in numpy either way: tf.data transforms
        per row (unbatch, shuffle) cost tens of microseconds a row on this dict of columns.
        """
        import tensorflow as tf

        types = {"numeric": tf.float32, "int64": tf.int64, "string": tf.string}
        inputs = {
            c: tf.TensorSpec((None, 1), types["numeric" if f["kind"] == "numeric" else f["dtype"]])
            for c, f in self.features.items()
        }
        inputs.update({c: tf.TensorSpec((None, 1), tf.int64) for c, f in self.features.items() if f.get("codes")})
        labels = tf.TensorSpec((None,), tf.int64 if self.task == "multiclass" else tf.float32)
        passes = []

        def generate():
            # tf.data calls this once a pass: the pass count is the epoch (a resume skips whole passes).
            passes.append(None)
            yield from self.batches(seed, len(passes) - 1)

        return tf.data.Dataset.from_generator(generate, output_signature=(inputs, labels))


def _shuffled_slices(window, rng):
    """The rows of a window of (inputs, labels) chunks, permuted, in slices of SLICE_ROWS."""
    inputs = {c: np.concatenate([x[c] for x, _ in window]) for c in window[0][0]}
    labels = np.concatenate([y for _, y in window])
    order = rng.permutation(len(labels))
    for start in range(0, len(order), SLICE_ROWS):
        rows = order[start : start + SLICE_ROWS]
        yield {c: values[rows] for c, values in inputs.items()}, labels[rows]


def scan(
    path,
    target,
    *,
    task="auto",
    categorical=(),
    seed=42,
    validation_fraction=0.1,
    test_fraction=0.1,
    missing="mean",
    text_codes=False,
):
    """Read a CSV in chunks into a `StreamedTable`: the same checks, split and statistics as `tabular.prepare`.

    Args:
        path, target: the CSV and its target column (as for `tabular.read_csv`).
        task, categorical, seed, validation_fraction, test_fraction, missing, text_codes: as for
            `tabular.prepare`.

    Raises:
        ZooError: what `tabular.read_csv` and `tabular.prepare` raise for the same file, with the
            same row numbers, before any MLflow run starts.
    """
    import pandas as pd

    table = tabular.check_target(tabular.read_frame(path, nrows=100), target, path)
    tabular.check_options(table.frame.columns, categorical, missing)

    # === Pass 1: every row with a target, for what tabular.prepare learns from the whole frame ===
    columns = {c: _Column() for c in table.frame.columns}
    target_values, rows, empty_targets, first_empty_target = set(), 0, 0, None
    for chunk in read_chunks(path):
        empty = chunk[target].isna()
        if empty.any() and first_empty_target is None:
            first_empty_target = int(chunk.index[empty.to_numpy()][0])
        empty_targets += int(empty.sum())
        chunk = chunk[~empty]
        rows += len(chunk)
        if len(target_values) < _TARGET_LEVELS:
            target_values.update(chunk[target].unique().tolist())
        for column, seen in columns.items():
            seen.observe(chunk[column])
    if empty_targets and missing == "error":
        raise tabular.empty_targets_error(target, table.name, empty_targets, first_empty_target)
    target_seen = columns.pop(target)
    kinds = {column: seen.kind(column, categorical) for column, seen in columns.items()}
    if not kinds:
        raise ZooError(f"The table has no feature columns besides the target '{target}'.")
    checked = [c for c, kind in kinds.items() if kind == "numeric"]
    if target_seen.type in ("int", "float"):
        checked.append(target)
    for column in checked:
        seen = target_seen if column == target else columns[column]
        if seen.nonfinite:
            raise tabular.nonfinite_error(column, table.name, *seen.first_nonfinite, seen.nonfinite)
    if missing == "error":
        for column in kinds:
            if columns[column].empty:
                raise tabular.missing_error(column, table.name, columns[column].empty, columns[column].first_empty)
    column_types = {c: seen.type for c, seen in columns.items()}
    column_types[target] = target_seen.type
    values = pd.Series(list(target_values), name=target)
    values = values.astype(str) if target_seen.type == "str" else values.astype(_PANDAS[target_seen.type])
    task, class_names = tabular.task_and_classes(values, task)
    split = splits.RowSplit(rows, seed, validation_fraction, test_fraction, what=table.name)

    # === Pass 2: statistics of the training rows; the held-out rows are kept ===
    specs = {c: {"kind": kind} for c, kind in kinds.items()}
    moments = {c: [0, 0.0, 0.0] for c in checked if c != target}  # count, mean, M2 of each numeric column
    vocabularies = {c: set() for c, kind in kinds.items() if kind == "categorical"}
    held = {splits.VALIDATION: [], splits.TEST: []}
    seen_rows = 0
    for chunk in read_chunks(path, [c for c, kind in column_types.items() if kind == "str"]):
        chunk = _cast(chunk[chunk[target].notna()], specs, column_types, target)
        codes = split.assign(np.arange(seen_rows, seen_rows + len(chunk)))
        seen_rows += len(chunk)
        train = chunk[codes == splits.TRAIN]
        for column, moment in moments.items():
            _merge_moments(moment, train[column].dropna().to_numpy(dtype="float64"))
        for column, vocabulary in vocabularies.items():
            vocabulary.update(train[column].dropna().unique().tolist())
        for code, kept in held.items():
            kept.append(chunk[codes == code])
    features = {}
    for column, kind in kinds.items():
        if kind == "numeric":
            count, mean, m2 = moments[column]
            features[column] = {
                "kind": "numeric",
                "mean": float(mean),
                "variance": float(m2 / count if count else 0.0) or 1.0,
            }
        else:
            is_int = column_types[column] == "int"
            features[column] = {
                "kind": "categorical",
                "dtype": "int64" if is_int else "string",
                "vocabulary": [int(v) if is_int else str(v) for v in sorted(vocabularies[column], key=str)],
            }
            if text_codes and not is_int:
                features[column]["codes"] = True
    validation, test = (_fill(pd.concat(held[code]), features) for code in (splits.VALIDATION, splits.TEST))
    converted = tabular.TabularSplits(None, validation, test, target, task, class_names, features, table)
    return StreamedTable(
        path=os.path.abspath(path),
        table=table,
        target=target,
        task=task,
        class_names=class_names,
        features=features,
        filled={c: columns[c].empty for c, kind in kinds.items() if kind == "numeric" and columns[c].empty},
        split=split,
        validation=validation,
        test=test,
        column_types=column_types,
        num_rows=rows,
        converted=converted,
        empty_targets=empty_targets,
    )


_PANDAS = {"int": "int64", "float": "float64", "bool": "bool", "str": "str"}


def _kind(values):
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_integer_dtype(values):
        return "int"
    if pd.api.types.is_numeric_dtype(values):
        return "float"
    return "str"


def _merged(kinds):
    """The dtype pandas gives a column read whole, from the dtypes it gave each chunk."""
    if kinds <= {"int"}:
        return "int"
    if kinds <= {"bool"}:
        return "bool"
    if kinds <= {"int", "float"}:
        return "float"
    return "str"


def _cast(chunk, features, column_types, target):
    """Cast a chunk's columns as `tabular.prepare` casts the whole frame (dtypes as pandas reads it whole)."""
    import pandas as pd

    chunk = chunk.copy()
    for column, feature in features.items():
        if feature["kind"] == "numeric":
            chunk[column] = pd.to_numeric(chunk[column], errors="coerce").astype("float32")
        elif column_types[column] == "int":
            chunk[column] = chunk[column].astype("int64")
        elif column_types[column] == "float":
            # Read whole, the column is float throughout: 1 reads as 1.0 in every chunk.
            chunk[column] = chunk[column].astype("float64").astype(str)
        else:
            chunk[column] = chunk[column].astype(str)
    kind = column_types[target]
    chunk[target] = chunk[target].astype(str) if kind == "str" else chunk[target].astype(_PANDAS[kind])
    return chunk


def _fill(frame, features):
    means = {c: f["mean"] for c, f in features.items() if f["kind"] == "numeric"}
    return frame.fillna(means)


def _merge_moments(moment, values):
    """Chan et al.'s pairwise update of (count, mean, M2) with a chunk of values."""
    if not len(values):
        return
    count, mean, m2 = moment
    n = len(values)
    chunk_mean = float(values.mean())
    chunk_m2 = float(((values - chunk_mean) ** 2).sum())
    total = count + n
    delta = chunk_mean - mean
    moment[0] = total
    moment[1] = mean + delta * n / total
    moment[2] = m2 + chunk_m2 + delta * delta * count * n / total


def file_digest(path, block=2**20):
    """The MD5 of a file's bytes, read in blocks: MLflow's dataset digest without loading rows."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while data := handle.read(block):
            digest.update(data)
    return digest.hexdigest()[:8]


def mlflow_dataset(streamed, name):
    """An MLflow dataset record of a streamed CSV: source, schema, row count and digest, no rows.

    Args:
        streamed: the `StreamedTable`.
        name: the dataset's name in the run, ending in its split (`fair-train`).
    """
    from mlflow.types import DataType
    from mlflow.types.schema import ColSpec, Schema

    types = {"int": DataType.long, "float": DataType.double, "bool": DataType.boolean, "str": DataType.string}
    schema = Schema([ColSpec(types[kind], str(column)) for column, kind in streamed.column_types.items()])
    rows = {"train": streamed.num_train, "validation": len(streamed.validation), "test": len(streamed.test)}
    profile = {"num_rows": rows[name.rsplit("-", 1)[-1]], "file_rows": streamed.num_rows}
    return meta_dataset(streamed.path, name, file_digest(streamed.path), schema, profile)


def listing_digest(paths):
    """A digest of a file listing (each path, size and modification time), reading no file."""
    digest = hashlib.md5(usedforsecurity=False)
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:8]


def meta_dataset(source, name, digest, schema, profile):
    """An MLflow dataset record that holds no data: source, schema, profile (row counts) and digest."""
    from mlflow.data.meta_dataset import MetaDataset

    from zoo import tracking

    class StreamedDataset(MetaDataset):
        """MetaDataset with a profile: MLflow's own keeps none (its `to_dict` leaves it out)."""

        @property
        def profile(self):
            return profile

        def to_dict(self):
            return {**super().to_dict(), "profile": json.dumps(profile)}

    return StreamedDataset(tracking.dataset_source(source), name=name, digest=digest, schema=schema)
