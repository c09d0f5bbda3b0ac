# Shared shell functions for scripts/run and scripts/test. Source it; do not run it.
# Everything the project needs on a fresh Debian machine is installed from here.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_PACKAGES=(libsodium-dev libpq-dev libssl-dev pkg-config postgresql postgresql-contrib python3 python3-venv binutils systemd age unzip pgbouncer)

# The system's own Python (Debian's python3 package), never whichever python3 comes first on PATH:
# small helper scripts run with it, and the test clients live in a virtual environment made from it
# (Debian's Python refuses `pip install` outside one: "externally-managed-environment").
PYTHON=/usr/bin/python3
VENV_DIR="$REPO_ROOT/.venv"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages that are missing (needs root or sudo).
ensure_packages() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing missing packages: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing packages (${missing[*]}) and no sudo to install them"
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

# ensure_venv: a virtual environment in .venv with Tests/python/requirements.txt installed; reused
# while the requirements file is unchanged. Prints nothing when there is nothing to do.
ensure_venv() {
    local requirements="$REPO_ROOT/Tests/python/requirements.txt" stamp="$VENV_DIR/.requirements.sha256" want
    want="$(sha256sum "$requirements" | cut -d' ' -f1)"
    [ -x "$VENV_DIR/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
    log "installing the Python test clients into $VENV_DIR (Tests/python/requirements.txt)"
    [ -x "$VENV_DIR/bin/python" ] || "$PYTHON" -m venv "$VENV_DIR" || die "$PYTHON -m venv failed (Debian package python3-venv)"
    "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >/dev/null \
        || die "pip could not install Tests/python/requirements.txt into $VENV_DIR"
    printf '%s\n' "$want" >"$stamp"
}

ensure_swift() {
    command -v swift >/dev/null && return 0
    [ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH" && return 0
    [ -x /opt/swift/bin/swift ] && export PATH="/opt/swift/bin:$PATH" && return 0
    die "swift is not installed (expected on PATH or under /opt/swift)"
}

pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$dir" ] && [ -x "$dir/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    echo "$dir"
}

# initdb refuses to run as root: the cluster belongs to an unprivileged user.
PG_OS_USER=""
pg_os_user() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        PG_OS_USER=postgres
    else
        PG_OS_USER="$(id -un)"
    fi
}

as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

free_port() {
    "$PYTHON" - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# cluster_init DIR: creates a cluster in DIR/pgdata (superuser "postgres", trust auth on a
# private socket directory and 127.0.0.1 only). No-op when it exists.
cluster_init() {
    local dir bindir
    mkdir -p "$1"
    dir="$(cd "$1" && pwd -P)"
    bindir="$(pg_bindir)"
    pg_os_user
    # The server runs as $PG_OS_USER, which cannot reach a cluster inside a private home (e.g. a
    # clone under /root). Keep the cluster elsewhere then, behind a symlink at the same path.
    if [ "$(id -u)" -eq 0 ] && ! runuser -u "$PG_OS_USER" -- test -x "$dir" 2>/dev/null \
        && [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
        local real="/var/lib/privacy-gateway/$(printf '%s' "$dir" | sha256sum | cut -c1-16)"
        # A cluster already there was left by an earlier clone at this same path (deleted since):
        # it holds that clone's data, set up with its root key, so it is not this clone's. Keep it,
        # out of the way, rather than migrate it and then refuse the new root key.
        if [ -e "$real/pgdata/PG_VERSION" ]; then
            as_pg_user "$bindir/pg_ctl" status -D "$real/pgdata" >/dev/null 2>&1 \
                && die "$real (the cluster of an earlier clone at $dir) is running: stop it first ($bindir/pg_ctl stop -D $real/pgdata as $PG_OS_USER)"
            local kept="$real.left-$(date -u +%Y%m%dT%H%M%SZ)"
            mv "$real" "$kept"
            log "a cluster left by an earlier clone at $dir was moved aside to $kept (delete it when no longer needed)"
        fi
        mkdir -p "$real"
        chown "$PG_OS_USER" "$real"
        chmod 755 /var/lib/privacy-gateway "$real"
        rmdir "$dir" && ln -s "$real" "$dir"
        dir="$real"
        log "$1 is not reachable by the $PG_OS_USER user; the cluster lives in $real"
    fi
    if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
        log "initialising a private PostgreSQL cluster in $dir/pgdata"
        mkdir -p "$dir/pgdata" "$dir/socket"
        chown "$PG_OS_USER" "$dir" "$dir/pgdata" "$dir/socket" 2>/dev/null || true
        chmod 700 "$dir/pgdata"
        as_pg_user "$bindir/initdb" -D "$dir/pgdata" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    [ -f "$dir/port" ] || free_port >"$dir/port"
}

# cluster_start DIR: starts the cluster (if not running) and waits until it accepts connections.
cluster_start() {
    local dir bindir port
    dir="$(cd "$1" && pwd -P)"
    bindir="$(pg_bindir)"
    pg_os_user
    port="$(cat "$dir/port")"
    if as_pg_user "$bindir/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
        return 0
    fi
    chown "$PG_OS_USER" "$dir/socket" 2>/dev/null || true
    # pg_ctl hands -o to a shell: the socket path is quoted for it (a path with spaces), and a
    # path with a quote in it is refused rather than run.
    case "$dir" in *\'*) die "the cluster's path $dir contains a quote; clone the repository to a path without one" ;; esac
    as_pg_user "$bindir/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k '$dir/socket' -c listen_addresses=127.0.0.1 -c max_connections=${PG_MAX_CONNECTIONS:-200} -c fsync=${PG_FSYNC:-on}" \
        start >/dev/null || { tail -n 20 "$dir/postgres.log" >&2; die "PostgreSQL did not start (log: $dir/postgres.log)"; }
}

cluster_stop() {
    local dir bindir
    dir="$(cd "$1" 2>/dev/null && pwd -P)" || return 0
    bindir="$(pg_bindir)"
    pg_os_user
    as_pg_user "$bindir/pg_ctl" -D "$dir/pgdata" -m fast -w stop >/dev/null 2>&1 || true
}

# The owner (migration) URL of a cluster made by cluster_init.
cluster_url() {
    local dir="$1" db="${2:-postgres}"
    echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/$db"
}

cluster_psql() {
    local dir="$1"; shift
    "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 "$(cluster_url "$dir")" "$@"
}
