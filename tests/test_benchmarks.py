"""The benchmark runner writes its results table from figures it measured, and nothing into the repository."""

import importlib.metadata
import json
import re
import subprocess
import sys

from conftest import REPO

RUNNER = REPO / "benchmarks" / "run_all.py"
sys.path.insert(0, str(RUNNER.parent))
try:
    import run_all
finally:
    sys.path.pop(0)
# What a benchmark must never leave in the repository (the runner works in temporary folders).
LEFTOVERS = (
    "mlflow.db",
    "mlruns",
    "zoo-checkpoints",
    "benchmarks/mlflow.db",
    "benchmarks/mlruns",
    "benchmarks/zoo-checkpoints",
)


def test_the_readme_shows_the_summary_of_the_committed_results():
    # README.md and benchmarks/RESULTS.md come from the same run: the same date and summary rows.
    readme = (REPO / "README.md").read_text()
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    block = readme.split(run_all.README_START)[1].split(run_all.README_END)[0]
    date = re.search(r"on (\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC)", results).group(1)
    assert f"on {date}" in block
    rows = [line for line in block.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) > 10 and all(row in results for row in rows)


def test_runner_writes_the_table_for_a_quick_subset(tmp_path):
    before = {name for name in LEFTOVERS if (REPO / name).exists()}
    output, figures, readme = tmp_path / "RESULTS.md", tmp_path / "results.json", tmp_path / "README.md"
    block = (REPO / "README.md").read_text().split(run_all.README_START)[1].split(run_all.README_END)[0]
    readme.write_text(f"# Before\n\n{run_all.README_START}{block}{run_all.README_END}\n\n## After\n")
    finished = subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "--only",
            "course_baseline",
            "--quick",
            "--output",
            str(output),
            "--json",
            str(figures),
            "--readme",
            str(readme),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]

    table = output.read_text()
    # The machine it ran on, read from the system rather than typed in.
    assert re.search(r"^\| CPU \| \S.* \|$", table, re.M)
    assert re.search(r"^\| Cores \| \d+ ", table, re.M)
    versions = [importlib.metadata.version(p) for p in ("tensorflow", "keras", "mlflow")]
    assert f"| TensorFlow, Keras, MLflow | {', '.join(versions)} |" in table
    assert re.search(r"on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", table)
    assert "--quick: smoke figures" in table

    # The course-baseline rows carry the figures the benchmark measured.
    result = json.loads(figures.read_text())["sections"]["course_baseline"]["figures"]
    assert result["numpy"]["epochs"] == 90 and result["zoo"]["epochs"] >= 1
    for run in (result["numpy"], result["numpy_course_split"], result["zoo"]):
        assert 0.0 <= run["test_accuracy"] <= 1.0 and run["wall_seconds"] > 0
    numpy_row = next(line for line in table.splitlines() if line.startswith("| Course network, NumPy loop (zoo"))
    assert f"**{result['numpy']['test_accuracy']:.3f}**" in numpy_row
    zoo_row = next(line for line in table.splitlines() if line.startswith("| Zoo MLP"))
    assert f"**{result['zoo']['test_accuracy']:.3f}**" in zoo_row
    # The README's block holds the summary, with the same figures; the text around it is kept.
    summary = next(line for line in table.splitlines() if line.startswith("| Course NumPy network vs zoo MLP"))
    assert f"**{result['zoo']['test_accuracy']:.3f}**" in summary
    updated = readme.read_text()
    assert updated.startswith("# Before\n\n") and updated.endswith(f"{run_all.README_END}\n\n## After\n")
    assert summary in updated and "[RESULTS.md](RESULTS.md)" in updated
    # The same tables again from the saved figures, measuring nothing.
    again = tmp_path / "again.md"
    subprocess.run(
        [sys.executable, str(RUNNER), "--from-json", str(figures), "--output", str(again)], check=True, timeout=60
    )
    assert again.read_text() == table
    # Sections that were not asked for are not in the table.
    assert "## Each recipe in its default configuration" not in table
    # `--update`: a later run's figures replace that section only, and the tables say where they come from.
    earlier = json.loads(figures.read_text())
    later = json.loads(figures.read_text())
    later["sections"]["course_baseline"]["figures"]["zoo"]["test_accuracy"] = 0.123456
    later["command"], later["machine"]["commit"] = "python benchmarks/run_all.py --update x.json", "abc1234"
    merged = run_all.merge_update(earlier, later)
    assert merged["sections"]["course_baseline"]["figures"]["zoo"]["test_accuracy"] == 0.123456
    assert earlier["sections"]["course_baseline"]["figures"]["zoo"]["test_accuracy"] != 0.123456
    remade = run_all.render(merged)
    assert "**0.123**" in next(line for line in remade.splitlines() if line.startswith("| Zoo MLP"))
    assert "Then `python benchmarks/run_all.py --update x.json` measured course_baseline again" in remade
    assert "(commit abc1234" in remade
    assert {name for name in LEFTOVERS if (REPO / name).exists()} == before


def test_a_failed_section_is_reported_in_the_table_not_hidden():
    results = {
        "machine": run_all.machine(),
        "quick": False,
        "total_seconds": 1.0,
        "command": "python x",
        "sections": {"overhead": {"error": "exit 2: ZooError: something broke", "section_seconds": 0.5}},
    }
    results["machine"]["load_average_end"] = None
    table = run_all.render(results)
    assert "## What the zoo costs over hand-written Keras" in table
    assert "**Failed:** exit 2: ZooError: something broke" in table


def test_tensorflow_datasets_runs_are_planned_only_for_data_on_disk(tmp_path):
    # tfds' own layout: NAME/VERSION/dataset_info.json, or NAME/CONFIG/VERSION/ for configured sets.
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    (tmp_path / "imdb_reviews" / "plain_text" / "1.0.0").mkdir(parents=True)
    (tmp_path / "imdb_reviews" / "plain_text" / "1.0.0" / "dataset_info.json").write_text("{}")
    (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)  # an interrupted download: no dataset_info.json
    planned = run_all.tfds_runs(["cnn", "lstm", "gan", "mlp"], str(tmp_path))
    assert planned == [("cnn", "mnist"), ("lstm", "mnist"), ("lstm", "imdb_reviews"), ("gan", "mnist")]
    assert run_all.tfds_runs(["cnn"], str(tmp_path / "empty")) == []

    results = {
        "machine": run_all.machine(),
        "quick": False,
        "total_seconds": 1.0,
        "command": "python x",
        "sections": {
            "recipes": {"recipes": {}, "tfds_root": str(tmp_path), "tfds_found": ["mnist"], "section_seconds": 0.5}
        },
    }
    results["machine"]["load_average_end"] = None
    table = run_all.render(results)
    assert f"From tensorflow-datasets in `{tmp_path}`: mnist." in table
    assert "not run: cifar10, fashion_mnist, imdb_reviews." in table


# === The gate: every benchmark states its target and exits 1 when it misses it ===


def test_every_benchmark_script_ends_with_its_gate():
    scripts = sorted(p for p in RUNNER.parent.glob("*.py") if p.name not in ("run_all.py", "gate.py"))
    assert scripts
    for script in scripts:
        text = script.read_text()
        assert re.search(r"gate\.exit_status\(|return 1 if|else 1\n", text), f"{script.name} never exits non-zero"
        assert "sys.exit(main())" in text or "raise SystemExit(main())" in text, script.name


def test_the_runner_exits_1_when_a_figure_misses_its_target():
    def results(accuracy, script_status):
        recipe = {"metrics": {"test_accuracy": accuracy, "epochs_trained": 3.0}}
        return {
            "sections": {
                "recipes": {"recipes": {"cnn": recipe, "cnn --dataset mnist": {"metrics": {"test_accuracy": 0.1}}}},
                "rbm": {"returncode": script_status, "figures": {}, "command": "python benchmarks/rbm_vs_sklearn.py"},
                "others": {
                    "scripts": {
                        "backends.py": {"returncode": script_status, "figures": {}, "command": "python benchmarks/b.py"}
                    }
                },
            }
        }

    assert run_all.missed_targets(results(0.99, 0)) == []
    missed = run_all.missed_targets(results(0.5, 1))
    assert missed == [
        "zoo train cnn: test_accuracy 0.5 < 0.98",
        "python benchmarks/rbm_vs_sklearn.py exited 1 (a target missed)",
        "python benchmarks/b.py exited 1 (a target missed)",
    ]


def test_a_script_run_with_an_impossible_target_exits_1(tmp_path):
    finished = subprocess.run(
        [sys.executable, str(RUNNER.parent / "cnn_digits.py"), "--model", "mlp_image", "--quick", "--target", "1.01"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 1, finished.stdout[-2000:] + finished.stderr[-2000:]
    assert "target mlp_image mean test accuracy >= 1.01: MISSED" in finished.stdout
