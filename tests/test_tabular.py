"""Reading CSVs, inferring column kinds and tasks, splitting deterministically."""

import numpy as np
import pandas as pd
import pytest

from zoo.datasets import tabular
from zoo.errors import ZooError


def test_admissions_columns_and_task(admissions_csv):
    table = tabular.read_csv(admissions_csv, "admit")
    splits = tabular.prepare(table, seed=0)
    assert splits.task == "binary"
    assert splits.features["rank"] == {"kind": "categorical", "dtype": "int64", "vocabulary": [1, 2, 3, 4]}
    assert splits.features["gre"]["kind"] == "numeric"
    assert splits.features["gpa"]["kind"] == "numeric"
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (320, 40, 40)
    # Statistics come from the training rows only.
    assert splits.features["gre"]["mean"] == pytest.approx(splits.train["gre"].mean())


def test_split_is_deterministic_per_seed(admissions_csv):
    table = tabular.read_csv(admissions_csv, "admit")
    first, again, other = (tabular.prepare(table, seed=s) for s in (3, 3, 4))
    assert first.test.index.tolist() == again.test.index.tolist()
    assert first.test.index.tolist() != other.test.index.tolist()
    assert not set(first.test.index) & set(first.train.index)


@pytest.mark.parametrize(
    "name, task, classes",
    [
        ("wine", "multiclass", 3),
        ("iris", "multiclass", 3),
        ("breast_cancer", "binary", 2),
        ("diabetes", "regression", 0),
    ],
)
def test_embedded_tables_infer_their_task(name, task, classes):
    splits = tabular.prepare(tabular.load_embedded(name))
    assert splits.task == task
    assert len(splits.class_names) == classes


def test_arrays_give_one_named_column_each(admissions_csv):
    splits = tabular.prepare(tabular.read_csv(admissions_csv, "admit"))
    inputs, labels = splits.arrays(splits.test)
    assert set(inputs) == {"gre", "gpa", "rank"}
    assert inputs["gre"].shape == (40, 1) and inputs["gre"].dtype == np.float32
    assert inputs["rank"].dtype == np.int64
    assert set(np.unique(labels)) <= {0.0, 1.0}


def test_string_columns_are_categorical_and_missing_numbers_use_the_mean(tmp_path):
    frame = pd.DataFrame(
        {"colour": ["red", "blue", "green"] * 10, "size": [1.5, None, 2.5] * 10, "label": ["yes", "no"] * 15}
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    splits = tabular.prepare(tabular.read_csv(str(path), "label"))
    assert splits.features["colour"]["dtype"] == "string"
    assert splits.class_names == ["no", "yes"]
    assert not splits.train["size"].isna().any()


@pytest.mark.parametrize(
    "content, target, pattern",
    [
        (None, "admit", "CSV file not found"),
        ("", "admit", "CSV file is empty"),
        ("a,b\n", "b", "has a header but no data rows"),
        ("a,b\n1,2\n3,4\n", "c", "Target column 'c' is not in"),
        ("a,b\n1,1\n2,1\n3,1\n4,1\n5,1\n", "b", "only 1 distinct value"),
        ("a,b\n1,0\n2,1\nx,0\n4,1\n5,0\n6,1\n7,0\n8,1\n", "b", "Column 'a' is numeric but row 4 holds 'x'"),
    ],
)
def test_bad_tables_raise_one_line_errors(tmp_path, content, target, pattern):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ZooError, match=pattern) as error:
        tabular.prepare(tabular.read_csv(str(path), target))
    assert "\n" not in str(error.value)
