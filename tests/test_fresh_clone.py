"""The README's commands pass on a fresh machine: nothing outside the repository, nothing installed by hand."""

import os

from tests.conftest import REPO
from zoo.datasets import tabular

# Spelt in pieces so that this file does not match itself.
OUTSIDE = ("../" + "shared", "shared" + "/data")
TEXT = (".py", ".md", ".toml", ".cfg", ".txt", ".yaml", ".yml", ".sh", "MLproject", "run")


def _repository_files():
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [s for s in subfolders if not s.startswith(".") or s == ".ci"]
        subfolders[:] = [s for s in subfolders if s not in ("build", "dist", "__pycache__") and "egg-info" not in s]
        for name in files:
            if name.endswith(TEXT):
                yield os.path.join(folder, name)


def test_nothing_in_the_repository_reads_a_path_outside_it():
    found = []
    for path in _repository_files():
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if any(needle in line for needle in OUTSIDE):
                    found.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    assert found == []


def test_the_admissions_table_ships_inside_the_package():
    path = tabular.packaged_path("admissions")
    assert os.path.commonpath([path, os.path.dirname(tabular.__file__)]) == os.path.dirname(tabular.__file__)
    table = tabular.load_embedded("admissions")
    assert list(table.frame.columns) == ["admit", "gre", "gpa", "rank"] and len(table.frame) == 400
    assert table.target == "admit" and int(table.frame["admit"].sum()) == 127
    readme = (REPO / "README.md").read_text()
    assert "zoo train mlp --dataset admissions" in readme and "UCLA" in readme


def test_the_readme_test_command_and_ci_install_chromium_with_the_same_script():
    script = REPO / ".ci" / "system-packages.sh"
    assert os.access(script, os.X_OK)
    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "python -m pytest" in line and "pip install" in line)
    assert command.startswith(".ci/system-packages.sh && "), command
    assert ".ci/system-packages.sh" in (REPO / ".ci" / "run").read_text()
    text = script.read_text()
    assert "packages+=(chromium)" in text and 'apt-get install -y -q "${packages[@]}"' in text
