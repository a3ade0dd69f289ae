#!/usr/bin/env bash
# What the test suite needs from the system besides Python: Debian's headless Chromium, which
# tests/test_tracking_server.py drives to check the MLflow UI. README's test command and .ci/run
# both call this; it does nothing when Chromium is already there.
set -euo pipefail
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    exit 0
fi
# As root no sudo is needed (and a minimal image may not have it).
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
