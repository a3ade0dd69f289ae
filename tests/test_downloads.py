"""tensorflow-datasets downloads where there is a network, and fails in seconds where there is none.

No test may use the network, so the download itself cannot run here: the probe is pointed at a
local port (open: "reachable", closed: "unreachable") and the tests check what zoo decides.
"""

import os
import socket
import subprocess
import sys
import time

import pytest

from zoo.datasets import images
from zoo.errors import ZooError


@pytest.fixture()
def listening_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_probe_answers_from_a_real_connection(monkeypatch, listening_port):
    monkeypatch.setenv("ZOO_DOWNLOAD_PROBE", "none")  # what the suite runs with (conftest.py)
    assert not images.can_download()
    monkeypatch.setenv("ZOO_DOWNLOAD_PROBE", f"127.0.0.1:{listening_port}")
    assert images.can_download()
    monkeypatch.setenv("ZOO_DOWNLOAD_PROBE", f"127.0.0.1:{_closed_port()}")
    assert not images.can_download()
    # An address that never answers (TEST-NET-1): given up on after the timeout, not minutes.
    monkeypatch.setenv("ZOO_DOWNLOAD_PROBE", "192.0.2.1:443")
    started = time.perf_counter()
    assert not images.can_download(timeout=1.0)
    assert time.perf_counter() - started < 3


def test_offline_or_forbidden_a_missing_dataset_fails_in_seconds(monkeypatch, tmp_path, listening_port):
    monkeypatch.setenv("ZOO_DOWNLOAD_PROBE", f"127.0.0.1:{_closed_port()}")
    started = time.perf_counter()
    with pytest.raises(
        ZooError, match="'mnist' is not on disk in .* and cannot be downloaded: its servers do not answer"
    ):
        images.load("mnist", data_dir=str(tmp_path))
    assert time.perf_counter() - started < 30
    monkeypatch.setenv("ZOO_DOWNLOAD_PROBE", f"127.0.0.1:{listening_port}")
    with pytest.raises(ZooError, match="`download=False` forbids downloading it"):
        images.load("mnist", data_dir=str(tmp_path), download=False)


def test_with_its_servers_reachable_a_missing_dataset_is_downloaded(tmp_path, listening_port):
    # The download starts (and is stopped here: there is no network to finish it).
    env = {
        **os.environ,
        "ZOO_DOWNLOAD_PROBE": f"127.0.0.1:{listening_port}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "train", "cnn", "--dataset", "mnist", "--data-dir", str(tmp_path / "tfds")],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stderr.readline()
        assert line.startswith(f"zoo: downloading 'mnist' into {tmp_path / 'tfds'} with tensorflow-datasets"), line
    finally:
        process.kill()
        process.wait(timeout=30)
