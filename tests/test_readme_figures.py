"""The figures README.md quotes are measured ones: benchmarks/RESULTS.md holds them, or a test checks them.

Hand-written figures drift: the README once quoted an RBM at -15.81 over 10 seeds and a GAN run of
"about 6 minutes" while the generated results said -15.98 over 5 seeds and 115 s. Here every
figure in the README's prose (a decimal number, or a count of seconds, minutes, epochs, percent or
"x") must be a number that benchmarks/RESULTS.md prints, unless it is a setting rather than a
measurement (`SETTINGS`) or a test checks it against its own run (`CHECKED_BY_TESTS`).
"""

import re
import subprocess

from tests.conftest import REPO

README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
# Numbers in the prose that state a setting, a threshold or a target, not a measurement.
SETTINGS = {
    "3.10": "the oldest Python supported",
    "0.2": "the quickstart MLP's dropout rate",
    "0.9": "the confidence threshold of the GAN's judge",
    "0.06": "the RBM's learning rate in the comparison with scikit-learn",
    "0.97": "the recurrent recipes' target",
    "0.7": "the backend issue's target: the default backend's epoch at most 0.7x TensorFlow's",
    "0.95": "the caption target",
    "15 minutes": "the time budget of the test suite",
    "70 %": "the forecasting split: the first 70 % of the rows train",
    "20 %": "the forecasting split: the last 20 % test",
    "3 seeds": "what benchmarks/ocr.py runs",
    "5 %": "benchmarks/tune.py's target: the share of epochs pruning must save",
    "30 s": "the bound `zoo launch` keeps to after a process dies (its --grace and the collectives' failure)",
    "10 minutes": "how long a run on another host may go without a heartbeat (zoo.tracking.heartbeat.STALE_AFTER)",
    "3.18": "the MLflow release whose UI the view tags were checked against",
    "76 epochs": "the OCR budget for 1,050 training lines: 2,500 optimizer steps at 33 per epoch (a setting)",
}
# README sections whose figures a benchmark script measured that benchmarks/RESULTS.md predates:
# run_all.py runs these scripts (its `others` section), so its next run puts their figures in
# RESULTS.md; then delete the entry. Until then their figures are unchecked, and listed here.
AWAITING_RUN_ALL: dict[str, str] = {
    "**Forecasts against the statistical models.**": "benchmarks/forecast_series.py",
    "**Measured on a team set-up.**": "benchmarks/team.py",
    "**Fine-tuning benchmark.**": "benchmarks/finetune.py",
    "### On data we did not make": "benchmarks/outside_data.py",
    "**Time to the first line.**": "benchmarks/first_line.py",
}
# Figures a test measures and compares with the README itself.
CHECKED_BY_TESTS = {
    "0.725": "tests/test_mlp_recipe.py::test_classic_admissions_network_beats_the_majority_class",
    "0.675": "tests/test_mlp_recipe.py::test_classic_admissions_network_beats_the_majority_class",
}
FIGURE = re.compile(
    r"(?<![\w.\-])-?\d+\.\d+(?!\.\d)(?:x\b)?"  # a decimal: 0.9825, -15.79, 0.29x (not 127.0.0.1)
    r"|(?<![\w.\-])\d+\s?(?:%|x\b|s\b|minutes?\b|epochs?\b|seeds?\b)"  # a count with its unit: 115 s
)


def _prose(text):
    """README text without code (fenced or inline) and without the generated summary block."""
    text = re.sub(r"<!-- benchmark summary.*?<!-- end of benchmark summary -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`]*`", "", text)


def _held(figure, results):
    """Whether `results` prints `figure`: a decimal anywhere, a count with the same unit."""
    if re.fullmatch(r"-?\d+\.\d+", figure):
        return re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", results) is not None
    number, unit = re.fullmatch(r"(\d+)\s?(.*)", figure).groups()
    return re.search(rf"(?<![\d.]){number}\s?{re.escape(unit)}", results) is not None


def readme_figures(text, skip_sections=()):
    """(figure, line) pairs: every figure quoted in the prose of `text`, outside `skip_sections`.

    A section starts with a paragraph that opens with one of `skip_sections` (a bold lead-in) and
    runs until the next bold lead-in or heading.
    """
    found = []
    skipping = False
    for line in _prose(text).splitlines():
        if line.startswith(("**", "#")):
            skipping = line.startswith(tuple(skip_sections))
        if skipping:
            continue
        for match in FIGURE.finditer(line):
            figure = re.sub(r"(\d)x$", r"\1", match.group(0))
            found.append((figure, line.strip()))
    return found


def unsupported(readme, results, skip_sections=()):
    """Figures of `readme` that neither `results` holds nor a test checks, nor SETTINGS explains."""
    return [
        (figure, line)
        for figure, line in readme_figures(readme, skip_sections)
        if not _held(figure, results) and figure not in SETTINGS and figure not in CHECKED_BY_TESTS
    ]


def test_every_readme_figure_is_in_the_generated_results():
    readme = README.read_text()
    for lead, script in AWAITING_RUN_ALL.items():
        assert lead in readme and (REPO / script).exists(), f"stale AWAITING_RUN_ALL entry: {lead} {script}"
    missing = unsupported(readme, RESULTS.read_text(), AWAITING_RUN_ALL)
    assert not missing, "README quotes figures benchmarks/RESULTS.md does not hold: " + "; ".join(
        f"{figure} in '{line[:80]}'" for figure, line in missing
    )


def test_the_check_catches_a_figure_the_results_do_not_hold():
    results = "| `rbm` (digits) | test pseudo_likelihood **-15.79**, 20 epochs, 19 s |"
    assert unsupported("20 epochs reach -15.79 in 19 s.", results) == []
    assert [f for f, _ in unsupported("about -15.81 over 10 seeds in 6 minutes, 0.43x", results)] == [
        "-15.81",
        "10 seeds",
        "6 minutes",
        "0.43",
    ]
    # A count must come with the unit the results give it: 19 s, not 19 minutes.
    assert [f for f, _ in unsupported("20 epochs in 19 minutes", results)] == ["19 minutes"]
    # A section awaiting run_all.py is skipped up to the next bold lead-in.
    text = "**New.** reaches 0.5.\n\n| 0.6 |\n\n**Old.** reaches -15.79 and 0.8."
    assert [f for f, _ in unsupported(text, results, ["**New.**"])] == ["0.8"]
    # Code is not prose: options and commands may hold any number.
    assert unsupported("Run `zoo train rbm --epochs 3 --set learning_rate=0.5`.", results) == []


def test_the_results_name_the_commit_they_measured_and_the_readme_the_same_run():
    results = RESULTS.read_text()
    commit = re.search(r"^\| Code \| commit ([0-9a-f]{7,40})", results, re.M)
    assert commit, "benchmarks/RESULTS.md does not say which commit it measured"
    block = README.read_text().split("<!-- benchmark summary")[1].split("<!-- end of benchmark summary")[0]
    assert f"commit {commit.group(1)}" in block
    known = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{commit.group(1)}^{{commit}}"], capture_output=True, timeout=60
    )
    inside_git = (REPO / ".git").exists()
    assert known.returncode == 0 or not inside_git, f"commit {commit.group(1)} is not in this repository's history"
