#!/usr/bin/env bash
# Set up everything pgferry needs on a Debian 12 machine: the system packages it runs for real
# (PostgreSQL 15 + contrib + hypopg, Redis, PgBouncer, the sqlite3 shell, promtool; wrk for the benches) and a .venv
# with the locked Python dependencies. Idempotent: a second run checks, finds nothing to do, and
# prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql-15 postgresql-contrib postgresql-15-hypopg postgresql-15-partman redis-server pgbouncer sqlite3 prometheus chromium-headless-shell wrk)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
python_ok() { python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }
python_ok || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2; echo "setup: apt-get failed (log above)" >&2; exit 1
    fi
    rm -f "$log"
fi

stamp=.venv/.pgferry-lock-stamp
want="$(cat requirements.lock pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "setup: creating .venv from requirements.lock"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip_log=$(mktemp)
.venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9 >"$pip_log" 2>&1 \
    || { cat "$pip_log" >&2; exit 1; }
rm -f "$pip_log"
# Bytecode compiled once here (as pip does by default, uv does not): where PYTHONDONTWRITEBYTECODE is
# set, every command would otherwise compile psycopg, click and the rest from source at each start.
.venv/bin/uv pip sync -q --compile-bytecode --python .venv/bin/python requirements.lock
.venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
.venv/bin/python -m compileall -q src >/dev/null
echo "$want" > "$stamp"
echo "setup: done (.venv/bin/pgferry, .venv/bin/forum)"
