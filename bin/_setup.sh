# Shared setup steps for bin/serve and bin/test (sourced, not run).
# Everything the project needs is installed here, so a fresh Debian/Ubuntu machine
# works: the Python packages always, Debian packages only when missing and root.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
APT_UPDATED=""

say() { printf 'webchat: %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing: $* (install with: sudo apt-get install -y $*)"
    return 1
  fi
  if [ -z "$APT_UPDATED" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  say "installing $* (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

find_python() {
  local py
  for py in python3 python3.13 python3.12 python3.11; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  say "Python 3.11 or newer is required"
  return 1
}

# ensure_venv REQUIREMENTS_FILE: a virtualenv with exactly those pins, reinstalled
# only when the requirement files change.
ensure_venv() {
  local req="$1" py stamp want
  py="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv || return 1
      "$py" -m venv "$VENV"
    fi
  fi
  stamp="$VENV/.requirements.sha256"
  want="$(cat "$ROOT/requirements.txt" "$ROOT/$req" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing Python packages from $req"
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/$req" >"$VENV/pip.log" 2>&1; then
      grep -v '^WARNING: Location' "$VENV/pip.log" >&2
      say "pip could not install $req"
      return 1
    fi
    echo "$want" > "$stamp"
  fi
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium fonts-noto-cjk fonts-noto-color-emoji || true
}

pg_up() { "$VENV/bin/python" - <<'PY' 2>/dev/null
import os, psycopg
psycopg.connect(os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"), connect_timeout=2).close()
PY
}

# PostgreSQL on 127.0.0.1:5432 for the tests: used if up, started if installed,
# installed (Debian's package) if missing and root.
ensure_postgres() {
  pg_up && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql || return 0
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start || true
  for _ in $(seq 1 30); do pg_up && return 0; sleep 0.5; done
  # A fresh Debian cluster refuses password-less TCP logins: give the test role one.
  if [ "$(id -u)" = 0 ]; then
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
    export TEST_PG_URL="postgresql://postgres:postgres@127.0.0.1:5432/postgres"
    for _ in $(seq 1 10); do pg_up && return 0; sleep 0.5; done
  fi
  say "PostgreSQL is not reachable; its tests will skip (or fail in CI)"
}

redis_up() { "$VENV/bin/python" -c 'import redis; redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()' 2>/dev/null; }

# Redis on 127.0.0.1:6379 for the tests (and redis-server for the restart tests).
ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server || return 0
  redis_up && return 0
  say "starting Redis"
  mkdir -p /tmp/webchat-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/webchat-redis --logfile /tmp/webchat-redis/redis.log || true
  for _ in $(seq 1 20); do redis_up && return 0; sleep 0.25; done
  say "Redis is not reachable; its tests will skip (or fail in CI)"
}
