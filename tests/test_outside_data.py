"""Data this project did not make: the line generator, the OCR folder defaults and the outside-data benchmark."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
try:
    import outside_data
    import outside_lines
finally:
    sys.path.pop(0)


def test_captcha_lines_are_a_folder_the_ocr_recipe_reads(tmp_path):
    from zoo.datasets import text_lines

    outside_lines.write("captcha", tmp_path / "captcha", 30, seed=1)
    lines = text_lines.load_folder(tmp_path / "captcha")
    assert set(lines.alphabet) <= set(outside_lines.CAPTCHA_ALPHABET) and len(lines.alphabet) > 10
    assert all(len(t) == 5 for t in lines.texts_train + lines.texts_test)
    # 200x50 images at the folder height of 32: 128 columns.
    assert lines.shape == (32, 128, 1)
    # Noisy, not blank: the ink and the background differ in every image.
    assert float(np.min(lines.x_train.std(axis=(1, 2, 3)))) > 0.05


def _lines(texts, width):
    from zoo.datasets import text_lines

    x = np.zeros((len(texts), 32, width, 1), dtype="float32")
    return text_lines.LineData(x, texts, x[:1], texts[:1], x[:1], texts[:1], "abc", "t", "t")


def test_a_folder_gets_batch_norm_and_a_step_every_4_columns_where_its_lines_fit():
    from zoo.recipes import ocr

    assert ocr.folder_model(_lines(["abcab", "cab"], 128)) == {"batch_norm": True, "time_downsample": 4}
    # 16 steps at 4 columns each: not twice the 12 this line needs, so 2 columns per step stays.
    assert ocr.folder_model(_lines(["abcabcabcabc"], 64)) == {"batch_norm": True}


def test_one_block_on_a_folder_says_which_default_needs_two(run_cli, tmp_path):
    # The folder default time_downsample=4 needs two pooling blocks: a user's one-block `filters`
    # gets a one-line error that names both fixes, not the builder's complaint about a value never set.
    outside_lines.write("captcha", tmp_path / "captcha", 60, seed=2)
    status, out, err = run_cli("train", "ocr", "--data", tmp_path / "captcha", "--set", "filters=8", "--epochs", "1")
    assert status == 2, err
    assert "time_downsample=4" in err and "time_downsample=2" in err and err.count("\n") == 1, err


@pytest.mark.large
def test_the_benchmark_tables_every_dataset_with_its_baseline_and_peer(tmp_path):
    figures = tmp_path / "figures.json"
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "outside_data.py"), "--quick", "--techniques", "mlp", "--json", str(figures)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Exit 1 is a default that lost to its baseline, which one epoch may; anything else is a crash.
    assert finished.returncode in (0, 1), finished.stdout[-2000:] + finished.stderr[-2000:]
    records = json.loads(figures.read_text())["records"]
    assert [(r["technique"], r["dataset"]) for r in records] == [("mlp", "fair")]
    record = records[0]
    # fair: 32 % of the wives had an affair, so the majority class scores about 0.68.
    assert 0.6 < record["baseline"] < 0.75 and record["peer"] > record["baseline"]
    assert 0.0 <= record["zoo"] <= 1.0
    assert "| mlp | fair | accuracy |" in finished.stdout
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.large
def test_every_technique_runs_its_first_outside_dataset_quickly(tmp_path):
    figures = tmp_path / "figures.json"
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "outside_data.py"), "--quick", "--json", str(figures)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert finished.returncode in (0, 1), finished.stdout[-2000:] + finished.stderr[-2000:]
    records = json.loads(figures.read_text())["records"]
    assert [r["technique"] for r in records] == list(outside_data.TECHNIQUES)
