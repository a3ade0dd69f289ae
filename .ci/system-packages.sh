#!/usr/bin/env bash
# What the test suite needs from the system besides Python: Debian's headless Chromium, which
# tests/test_tracking_server.py drives to check the MLflow UI, and Debian's PostgreSQL server, which
# tests/postgres.py starts as a throwaway cluster for tests/test_team.py. README's test command and
# .ci/run both call this; it installs only what is missing.
set -euo pipefail
packages=()
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    packages+=(chromium)
fi
# The server binaries (initdb, pg_ctl) are in `pg_config --bindir` or Debian's versioned folder.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! [ -x "$(pg_config --bindir 2>/dev/null)/initdb" ]; then
    packages+=(postgresql)
fi
if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi
# As root no sudo is needed (and a minimal image may not have it).
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${packages[@]}"
