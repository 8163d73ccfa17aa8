#!/usr/bin/env bash
# Runs a command next to a throwaway PostgreSQL: a fresh cluster in a temporary folder, on a free
# loopback port, trusted local auth, removed afterwards. The command sees
# ORGSEC_TEST_POSTGRES_URL (postgres://orgsec@127.0.0.1:PORT/postgres), so that the orchestrator's
# store tests run against PostgreSQL as well as SQLite:
#
#   bash scripts/with-postgres.sh cargo test --locked -p orgsec
#
# PostgreSQL's binaries come from /usr/lib/postgresql/*/bin; when there are none they are
# installed with apt-get (Debian's `postgresql` package).
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

find_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && best="$d"
    done
    # The glob sorts 13 < 15 < 16 as text; fine for the versions Debian ships side by side.
    echo "$best"
}

bindir=$(find_bindir)
if [[ -z "$bindir" ]]; then
    echo "with-postgres: no PostgreSQL binaries under /usr/lib/postgresql; installing them with apt-get" >&2
    sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir=$(find_bindir)
    if [[ -z "$bindir" ]]; then
        echo "with-postgres: apt-get installed postgresql but no initdb appeared under /usr/lib/postgresql/*/bin" >&2
        exit 1
    fi
fi

# PostgreSQL refuses to run as root: run the server as the `postgres` user then.
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    fi
    as_pg=(runuser -u postgres --)
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d -t orgsec-pg.XXXXXX)
chmod 755 "$dir"
[[ ${#as_pg[@]} -gt 0 ]] && chown postgres "$dir"

# Runs a PostgreSQL program, as the postgres user when we are root, from a folder that user can
# enter (the caller's may be private to root).
pg() {
    (cd "$dir" && "${as_pg[@]}" "$@")
}

cleanup() {
    pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

pg "$bindir/initdb" -D "$dir/data" -U orgsec --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
}
# Durability is not the point of a throwaway cluster: trade it for speed.
if ! pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null; then
    cat "$dir/server.log" >&2
    exit 1
fi

export ORGSEC_TEST_POSTGRES_URL="postgres://orgsec@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') at $ORGSEC_TEST_POSTGRES_URL" >&2
set +e
"$@"
status=$?
set -e
exit $status
