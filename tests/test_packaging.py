"""The wheel installs only the `zoo` package: no top-level `datasets` or `recipes` module."""

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_maps_recipes_and_datasets_under_zoo(tmp_path):
    # Built from a copy: setuptools leaves build/ and *.egg-info/ beside the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "mlruns", "*.db"),
    )
    wheels_dir = tmp_path / "wheels"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels_dir),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheels = list(wheels_dir.glob("*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"zoo", wheels[0].name.split("-")[0] + "-" + wheels[0].name.split("-")[1] + ".dist-info"}
    assert "zoo/recipes/mlp.py" in names
    assert "zoo/datasets/tabular.py" in names
    assert "zoo/datasets/data/admissions.csv" in names, "the admissions table ships inside the package"
    # PEP 561: users' type checkers read zoo's annotations only when py.typed ships.
    assert "zoo/py.typed" in names
    assert not any(name.startswith(("datasets/", "recipes/")) for name in names)
    dist_info = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheels[0]).read(dist_info).decode()
    assert "zoo = zoo.cli:main" in entry_points
    metadata = zipfile.ZipFile(wheels[0]).read(dist_info.replace("entry_points.txt", "METADATA")).decode()
    for requirement in ("keras>=3.15.1", "mlflow>=3.17.2", "importlib_resources", "tensorflow-datasets"):
        assert requirement.lower() in metadata.lower(), requirement
