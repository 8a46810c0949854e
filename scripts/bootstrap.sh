# Shared by scripts/run and scripts/test: find Python 3.11, make .venv, install pinned requirements.
# Usage: source scripts/bootstrap.sh <requirements file>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then
  echo "Python 3.11 is required (Django 5.2 LTS on this project's pinned stack)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PY"
  "$PY" -m venv .venv
fi
REQ="${1:-requirements/base.txt}"
STAMP=".venv/.installed-$(basename "$REQ")-$(cat requirements/*.txt | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "==> installing $REQ"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$REQ"
  touch "$STAMP"
fi
export PATH="$PWD/.venv/bin:$PATH"
