# Shared by the gateway benchmarks: a release build, a private cluster with a migrated `bench`
# database and a `pgbench` database, a JWT minter and a gateway process. Source it after
# scripts/lib.sh; it sets BIN, DIR, PORT_PG, DATABASE_URL, PRIVACY_ROOT_KEY_FILE and cleans up on exit.

# BENCH_SCRATCH_PATH: the release build's scratch path (default .build-bench; a second worktree
# benchmarking beside another uses its own). BENCH_BIN: executables built elsewhere (a reference
# build of another commit, measured in the same run as this one), and nothing is built.
bench_setup() {
    local scratch="${BENCH_SCRATCH_PATH:-.build-bench}"
    if [ -n "${BENCH_BIN:-}" ]; then
        BIN="$BENCH_BIN"
    else
        log "building the gateway in release mode (slow the first time)"
        swift build -c release --scratch-path "$scratch" --product privacy-gateway >/dev/null
        swift build -c release --scratch-path "$scratch" --product privacyctl >/dev/null
        BIN="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"
    fi
    DIR="$(mktemp -d /tmp/privacy-gateway-bench.XXXXXX)"
    chmod 755 "$DIR"
    gateway=""
    trap bench_cleanup EXIT
    cluster_init "$DIR/pg"
    cluster_start "$DIR/pg"
    cluster_psql "$DIR/pg" -c "CREATE DATABASE bench" -c "CREATE DATABASE pgbench" >/dev/null
    PORT_PG="$(cat "$DIR/pg/port")"
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT_PG/bench"
    export PRIVACY_ROOT_KEY_FILE="$DIR/root.key"
    "$BIN/privacyctl" keys generate --out "$PRIVACY_ROOT_KEY_FILE" >/dev/null
    "$BIN/privacyctl" migrate >/dev/null
}

bench_cleanup() {
    [ -n "${gateway:-}" ] && kill "$gateway" 2>/dev/null
    cluster_stop "$DIR/pg"
    rm -rf "$DIR"
}

# json_field FIELD: reads a JSON document on stdin, prints one top-level field.
json_field() { "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# mint_jwt SECRET SUB [ROLE]: an HS256 user JWT valid for a day.
mint_jwt() { "$PYTHON" scripts/hs256_jwt.py "$1" "$2" "${3:-authenticated}" 86400; }

# start_gateway POOL_SIZE: serves as the privacy_gateway login on HTTP_PORT; waits until ready.
start_gateway() {
    HTTP_PORT="$(free_port)"
    # One tenant is all a benchmark has: its cap on concurrent database work is the whole pool.
    GATEWAY_DATABASE_URL="postgresql://privacy_gateway@127.0.0.1:$PORT_PG/bench" GATEWAY_POOL_SIZE="$1" \
        GATEWAY_TENANT_MAX_CONCURRENT="$1" PORT="$HTTP_PORT" \
        "$BIN/privacy-gateway" serve >"$DIR/gateway.log" 2>&1 &
    gateway=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$HTTP_PORT/ready" >/dev/null && return; sleep 0.1; done
    die "the gateway did not become ready (log: $DIR/gateway.log)"
}

stop_gateway() {
    kill "$gateway"
    wait "$gateway" 2>/dev/null || true
    gateway=""
}

# pgbench_tps MODE-FLAGS CLIENTS SECONDS: initialises the pgbench database once and prints tps.
pgbench_tps() {
    local url="postgresql://postgres@127.0.0.1:$PORT_PG/pgbench"
    [ -f "$DIR/pgbench-initialised" ] || { "$(pg_bindir)/pgbench" -q -i -s 10 "$url" >/dev/null 2>&1; touch "$DIR/pgbench-initialised"; }
    # shellcheck disable=SC2086
    "$(pg_bindir)/pgbench" $1 -c "$2" -j 2 -T "$3" "$url" 2>/dev/null | awk '/^tps/ {print $3; exit}'
}

# ratio MEASURED REFERENCE TARGET: prints the ratio line.
ratio() {
    "$PYTHON" -c "import sys; g, p = float(sys.argv[1]), float(sys.argv[2]); print(f'ratio: {g / p:.2f} (target >= {sys.argv[3]})')" "$1" "$2" "$3"
}

# Where the core time goes (the issue's budget is core µs per request on 2 cores): CPU clock
# ticks of a process tree — the process itself, its reaped children (cutime/cstime: PostgreSQL
# backends that exited) and its live children. cpu_ticks ROOT-PID...
cpu_ticks() {
    "$PYTHON" - "$@" <<'PY'
import os, sys
roots = {int(p) for p in sys.argv[1:]}
total = 0
for entry in os.listdir('/proc'):
    if not entry.isdigit():
        continue
    try:
        text = open(f'/proc/{entry}/stat').read()
    except OSError:
        continue
    fields = text[text.rindex(')') + 2:].split()  # from field 3 (state) on: the name may hold spaces
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    if int(entry) in roots:
        total += utime + stime + cutime + cstime
    elif ppid in roots:
        total += utime + stime
print(total)
PY
}

postmaster_pid() { head -1 "$DIR/pg/pgdata/postmaster.pid"; }

# cpu_begin: marks the gateway's and PostgreSQL's CPU ticks before a measured run.
cpu_begin() {
    CPU_GATEWAY0="$(cpu_ticks "$gateway")"
    CPU_POSTGRES0="$(cpu_ticks "$(postmaster_pid)")"
}

# cpu_per_request WRK-OUTPUT: "gateway G µs, PostgreSQL P µs" of core time per request since cpu_begin.
cpu_per_request() {
    local requests gateway_ticks postgres_ticks
    requests="$(awk '/requests in/ {print $1; exit}' "$1")"
    gateway_ticks=$(( $(cpu_ticks "$gateway") - CPU_GATEWAY0 ))
    postgres_ticks=$(( $(cpu_ticks "$(postmaster_pid)") - CPU_POSTGRES0 ))
    awk -v g="$gateway_ticks" -v p="$postgres_ticks" -v n="$requests" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "gateway %.0f µs, PostgreSQL %.0f µs", g * 1e6 / hz / n, p * 1e6 / hz / n }'
}
