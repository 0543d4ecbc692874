#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, lint, type check, then pytest on
# real servers (MariaDB, moto, the lab's OpenStack API) in parallel workers.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
.venv/bin/ruff check drorch tests bench grafana
.venv/bin/mypy
set +e
.venv/bin/pytest -n 2 --dist loadfile -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
