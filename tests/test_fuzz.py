"""Malformed input, generated: every loader and every served request ends in a result or in one line.

Hypothesis writes tables, series and `.npz` files from cells a user's file may hold (numbers,
`inf`, `nan`, huge numbers, empty cells, text, quotes, unicode, repeated or empty headers); a table
of malformed image folders and `labels.csv` folders covers the folder loaders; Hypothesis writes
requests for the served table, text and generator models and for a served tensor model. A loader
must return data (whose numbers are all finite) or raise a `ZooError` of one line; the served
model must answer (finite numbers) or raise the `MlflowException` the scoring server answers with
HTTP 400 and its message: never another exception, which `zoo` reports as `internal error` and the
server as "an unexpected error". Everything runs in this process, without training.
"""

import csv
import io
import os

# Hypothesis keeps what it learns in ./.hypothesis: in the suite's sandbox, not in the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(os.environ["ZOO_TESTS_HOME"], "hypothesis"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from zoo.errors import ZooError  # noqa: E402

# The suite draws the same examples every run (a CI failure is one a rerun shows); ZOO_FUZZ_EXAMPLES
# searches further with new random examples.
FUZZ = settings(
    max_examples=int(os.environ.get("ZOO_FUZZ_EXAMPLES", "40")),
    derandomize="ZOO_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# What a cell of a CSV a user made may hold.
CELLS = st.one_of(
    st.integers(-5, 5).map(str),
    st.floats(-1e3, 1e3, allow_nan=False).map(repr),
    st.sampled_from(["", "", "nan", "NaN", "inf", "-inf", "Infinity", "1e39", "-3e40", "1e308", "0x1F", "1,5"]),
    st.sampled_from(["yes", "no", "Oslo", "Lima", "n/a", "?", "—", "日本", '"quoted, comma"', "  spaced  ", "True"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
)
NAMES = st.sampled_from(["x", "y", "z", "target", "city", "", " x", "x.1", "Unnamed: 0", "日付"])


def _one_line(error):
    message = str(error)
    assert message.strip() and "\n" not in message.strip(), repr(message)
    return message


@st.composite
def tables(draw, min_columns=1):
    header = draw(st.lists(NAMES, min_size=min_columns, max_size=4))
    rows = draw(st.lists(st.lists(CELLS, min_size=len(header), max_size=len(header)), min_size=0, max_size=30))
    # Now and then a ragged row, a blank line or a missing header.
    if rows and draw(st.booleans()):
        rows[draw(st.integers(0, len(rows) - 1))] = draw(st.lists(CELLS, max_size=len(header) + 2))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if draw(st.integers(0, 9)):
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue(), header


def _learnable(draw_rows=40):
    """A table a model can use, whose cells the fuzz then spoils."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=draw_rows)
    return pd.DataFrame(
        {"x": x, "city": rng.choice(["Oslo", "Lima"], draw_rows), "rank": rng.integers(1, 4, draw_rows), "y": x > 0}
    )


def _check_tabular(path, target, **options):
    from zoo.datasets import tabular

    try:
        table = tabular.read_csv(str(path), target)
        splits = tabular.prepare(table, **options)
    except ZooError as error:
        _one_line(error)
        return None
    for part in (splits.train, splits.validation, splits.test):
        inputs, labels = splits.arrays(part)
        for column, values in inputs.items():
            if splits.features[column]["kind"] == "numeric":
                assert np.isfinite(values).all(), column
        if splits.task == "regression":
            assert np.isfinite(labels).all()
    return splits


@FUZZ
@given(table=tables(), target=NAMES, missing=st.sampled_from(["mean", "error"]), pick=st.integers(0, 3))
# Found by a CI run: a first data row wider than the header made pandas take its leading cells for an index.
@example(table=("x\r\n0,0,0\r\n0\r\n", ["x"]), target="x", missing="error", pick=0)
def test_any_csv_gives_a_table_or_one_line(tmp_path, table, target, missing, pick):
    text, header = table
    path = tmp_path / "table.csv"
    path.write_text(text, encoding="utf-8")
    categorical = (header[pick % len(header)],) if pick and header and header[pick % len(header)] else ()
    _check_tabular(path, target, missing=missing, categorical=categorical)


@FUZZ
@given(
    cells=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(["x", "city", "rank", "y"]), CELLS), max_size=8),
    missing=st.sampled_from(["mean", "error"]),
)
def test_a_good_csv_with_spoiled_cells_gives_a_table_or_one_line(tmp_path, cells, missing):
    frame = _learnable().astype(object)
    for row, column, cell in cells:
        frame.loc[row, column] = cell
    path = tmp_path / "spoiled.csv"
    frame.to_csv(path, index=False)
    _check_tabular(path, "y", missing=missing)


@FUZZ
@given(table=tables(min_columns=2), target=NAMES, time_column=st.sampled_from([None, "x", "t", "日付"]))
def test_any_series_csv_gives_a_series_or_one_line(tmp_path, table, target, time_column):
    from zoo.datasets import series

    text, _ = table
    path = tmp_path / "series.csv"
    path.write_text(text, encoding="utf-8")
    try:
        frame, spec = series.read_series_csv(str(path), target, time_column=time_column)
    except ZooError as error:
        _one_line(error)
        return
    for column in spec.columns():
        assert np.isfinite(frame[column].to_numpy(dtype="float64")).all()


NPZ_ARRAYS = st.one_of(
    st.just(np.zeros((6, 3, 2), "float32")),
    st.just(np.full((6, 3), np.nan)),
    st.just(np.array([np.inf, 1, 2, 3, 4, 5])),
    st.just(np.arange(6)),
    st.just(np.array(["a", "b", "c", "d", "e", "f"])),
    st.just(np.zeros((0,))),
    st.just(np.arange(5) % 2),
    st.just(np.array([3, 3])),
)


@FUZZ
@given(
    arrays=st.dictionaries(st.sampled_from(["x", "y", "lengths", "other"]), NPZ_ARRAYS, max_size=3),
    raw=st.one_of(st.none(), st.binary(max_size=64), st.just(b"PK\x03\x04broken zip")),
    mode=st.sampled_from(["many_to_one", "many_to_many"]),
    pad=st.booleans(),
)
# Found by a longer search: many_to_many with one number per sequence for y.
@example(arrays={"x": np.zeros((6, 3, 2), "float32"), "y": np.arange(6)}, raw=None, mode="many_to_many", pad=False)
def test_any_npz_gives_sequences_or_one_line(tmp_path, arrays, raw, mode, pad):
    from zoo.datasets import sequences

    path = tmp_path / "sequences.npz"
    if raw is None:
        np.savez(path, **arrays)
    else:
        path.write_bytes(raw)
    try:
        sequences.npz_sequences(str(path), mode=mode, pad=pad)
    except ZooError as error:
        _one_line(error)


def _png(path, size=(8, 8), mode="L"):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0]), dtype="uint8")).convert(mode).save(
        path
    )


def _folder(root, layout):
    """Make a folder from {relative path: 'png' | 'png-rgb' | 'png-wide' | 'dir' | bytes | str}."""
    root.mkdir()
    for relative, what in layout.items():
        path = root / relative
        if what == "dir":
            path.mkdir(parents=True, exist_ok=True)
        elif what == "png":
            _png(path)
        elif what == "png-rgb":
            _png(path, mode="RGB")
        elif what == "png-wide":
            _png(path, size=(40, 8))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.write_bytes if isinstance(what, bytes) else path.write_text)(what)
    return root


def _classes(count, per_class, extra=None):
    layout = {f"c{c}/{i}.png": "png" for c in range(count) for i in range(per_class)}
    return {**layout, **(extra or {})}


IMAGE_FOLDERS = {
    "empty": {},
    "one-class": _classes(1, 12),
    "class-without-images": _classes(2, 10, {"c2": "dir"}),
    "corrupt-image": _classes(2, 10, {"c0/bad.png": b"\x89PNG\r\n\x1a\nnot really"}),
    "text-named-png": _classes(2, 10, {"c1/notes.png": "hello"}),
    "only-other-files": {"c0/a.txt": "x", "c1/b.txt": "y"},
    "mixed-modes": _classes(2, 10, {"c0/rgb.png": "png-rgb", "c1/wide.png": "png-wide"}),
    "too-few": _classes(2, 1),
    "train-test-mismatch": {**{f"train/a/{i}.png": "png" for i in range(6)}, "test/b/0.png": "png"},
    "a-file": None,
}


@pytest.mark.parametrize("case", list(IMAGE_FOLDERS))
def test_any_image_folder_gives_images_or_one_line(tmp_path, case):
    from zoo.datasets import images

    layout = IMAGE_FOLDERS[case]
    root = tmp_path / "images"
    if layout is None:
        root.write_text("not a folder")
    else:
        _folder(root, layout)
    try:
        data = images.load_folder(str(root))
    except ZooError as error:
        _one_line(error)
        return
    assert np.isfinite(np.asarray(data.x_train)).all()


def _lines(rows, header="filename,words", images=None):
    layout = {name: "png-wide" for name in (images or [])}
    layout["labels.csv"] = header + "\n" + "".join(f"{row}\n" for row in rows)
    return layout


LINE_FOLDERS = {
    "no-labels-file": {"a.png": "png-wide"},
    "empty-labels": {"labels.csv": ""},
    "header-only": _lines([]),
    "wrong-columns": _lines(["a.png,12"], header="file,text", images=["a.png"]),
    "missing-image": _lines([f"{i}.png,{i}{i}" for i in range(12)], images=[f"{i}.png" for i in range(11)]),
    "empty-text": _lines([f"{i}.png,{'' if i == 3 else i}" for i in range(12)], images=[f"{i}.png" for i in range(12)]),
    "corrupt-image": {
        **_lines([f"{i}.png,{i}" for i in range(12)], images=[f"{i}.png" for i in range(11)]),
        "11.png": b"garbage",
    },
    "path-outside": _lines([f"../{i}.png,{i}" for i in range(12)]),
    "unseen-character": _lines(
        [f"{i}.png,{'x' if i == 11 else '1'}" for i in range(12)], images=[f"{i}.png" for i in range(12)]
    ),
    "binary-labels": {"labels.csv": b"\xff\xfe\x00garbage\x00"},
}


@pytest.mark.parametrize("case", list(LINE_FOLDERS))
def test_any_labels_folder_gives_lines_or_one_line(tmp_path, case):
    from zoo.datasets import text_lines

    root = _folder(tmp_path / "lines", LINE_FOLDERS[case])
    try:
        text_lines.load_folder(str(root))
    except ZooError as error:
        _one_line(error)


# === Requests to served models ===

FEATURES = {
    "x": {"kind": "numeric", "mean": 0.5, "variance": 2.0},
    "city": {"kind": "categorical", "dtype": "string", "vocabulary": ["Lima", "Oslo"]},
    "rank": {"kind": "categorical", "dtype": "int64", "vocabulary": [1, 2, 3]},
}
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["Oslo", "Lima", "Rome", "1", "2.5", "inf", "-Infinity", "NaN", "", "1e39"]),
    st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
RECORDS = st.lists(
    st.dictionaries(st.sampled_from(["x", "city", "rank", "label", "seed", "text", "other"]), VALUES, max_size=5),
    min_size=0,
    max_size=4,
)


def _answers_or_400(adapter, model, request):
    """The adapter's answer to `request` (finite), or None for a refusal the server answers with 400."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

    try:
        answer = adapter.predict(model, request)
    except MlflowException as error:
        assert error.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE), error.error_code
        assert error.get_http_status_code() == 400
        _one_line(error.message)
        return None
    numbers = np.asarray(answer.select_dtypes("number") if isinstance(answer, pd.DataFrame) else answer, "float64")
    assert np.isfinite(numbers).all(), numbers
    return answer


@pytest.fixture(scope="module")
def served():
    """The models behind the adapters, built once: a table MLP, a text classifier, a generator and a CNN."""
    import zoo
    from zoo import serving

    return {
        "table": (serving.Table(features=FEATURES), zoo.get("mlp", features=FEATURES, task="binary")),
        "text": (
            serving.Text(vocabulary=["", "[UNK]", "good", "bad"], sequence_length=6),
            zoo.get("lstm", input_shape=(6,), vocabulary_size=4, num_outputs=2, task="multiclass", units=4),
        ),
        "generator": (
            serving.Generator(latent_dim=4, num_classes=3),
            zoo.get(
                "gan", image_shape=(8, 8, 1), num_classes=3, latent_dim=4, generator_filters=4, discriminator_filters=4
            ).generator,
        ),
        "tensor": (serving.Tensor(), zoo.get("cnn", input_shape=(8, 8, 1), num_classes=3, filters=4)),
    }


@FUZZ
@given(records=RECORDS, kind=st.sampled_from(["table", "text", "generator"]), split=st.booleans())
def test_any_table_request_gets_an_answer_or_400(served, records, kind, split):
    adapter, model = served[kind]
    # The server hands the model what JSON gave it: records, or the `dataframe_split` frame.
    request = pd.DataFrame.from_records(records) if split else records
    _answers_or_400(adapter, model, request)


TENSORS = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8),
    st.lists(st.lists(st.floats(-300, 300), min_size=8, max_size=8), min_size=8, max_size=8),
    st.lists(st.text(max_size=3), max_size=3),
    st.sampled_from([[], [[[]]], "pixels", None, {"a": 1}]),
)


@FUZZ
@given(data=TENSORS, spoil=st.sampled_from([None, float("inf"), float("nan"), 1e39]))
def test_any_tensor_request_gets_an_answer_or_400(served, data, spoil):
    adapter, model = served["tensor"]
    try:
        array = np.asarray(data, dtype="float64")
        if array.shape == (8, 8) and spoil is not None:
            array[3, 4] = spoil
            data = array.tolist()
    except (TypeError, ValueError):
        pass
    if isinstance(data, list) and np.asarray(data, dtype=object).shape == (8, 8):
        data = [[[cell] for cell in row] for row in data]
    answer = _answers_or_400(adapter, model, data)
    if spoil is not None and isinstance(data, list) and np.asarray(data, dtype=object).shape == (8, 8, 1):
        assert answer is None, "a non-finite pixel is refused"


def test_a_non_finite_number_in_a_served_table_is_refused_naming_the_column(served):
    from mlflow.exceptions import MlflowException

    adapter, model = served["table"]
    for value in (float("inf"), "-Infinity", 1e39):
        with pytest.raises(MlflowException, match=r"Column 'x' holds (-?inf|1e\+39) in row 1 \(1 such value"):
            adapter.predict(model, [{"x": 1.0, "city": "Oslo", "rank": 1}, {"x": value, "city": "Lima", "rank": 2}])
    # An empty number stands for the training mean, as in training.
    answer = adapter.predict(model, [{"x": None, "city": "Oslo", "rank": 1}])
    assert np.isfinite(np.asarray(answer, dtype="float64")).all()


@pytest.mark.parametrize("loader", ["table", "series", "labels", "texts"])
def test_a_first_data_row_wider_than_the_header_is_one_line_naming_the_line(tmp_path, loader):
    from zoo.datasets import sequences, series, tabular, text_lines

    # pandas reads this without an error, taking "1" and "2" for an index and shifting every column.
    text = "x,y\n1,2,3\n4,5,6\n"
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    read = {
        "table": lambda: tabular.read_csv(str(path), "y"),
        "series": lambda: series.read_series_csv(str(path), "y"),
        "labels": lambda: text_lines.check_folder(str(tmp_path), image_column="x", text_column="y"),
        "texts": lambda: sequences.text_csv(str(path), text_column="x", target="y"),
    }[loader]
    with pytest.raises(ZooError) as raised:
        read()
    assert "Line 2 of" in _one_line(raised.value) and "3 cells but the header names 2" in str(raised.value)
