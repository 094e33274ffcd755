#!/usr/bin/env bash
# N sites on one box: a Debian-layout nginx tree of N sites as `pyvhost
# deploy` writes them (each on its own unix socket, one venv shared, one
# alias each), one daemon with --idle IDLE. Measured:
#   - nginx's start, and the daemon's start until it serves (target ≤ 5 s);
#   - every site visited once, PAR at a time: the latency of a first request
#     (target ≤ 100 ms), then BUSY sites kept busy until the others have
#     stopped: the PSS of the daemon and all its processes (target ≤ 200 MB
#     at 10,000) and its descriptors;
#   - a request to a site stopped by --idle;
#   - `pyvhost sites` over the tree (target ≤ 2 s);
#   - `pyvhost deploy` of sites N+1, N+2, … end to end (nginx -t and reload
#     included; target ≤ 3 s), then more while the busy sites are loaded:
#     the slowest request meanwhile says whether a re-read stalled serving.
# usage: many-sites.sh PATH/TO/pyvhost [N] [IDLE]   (N 1000, IDLE 10)
# env: BUSY (10), PAR (4), DEPLOYS (3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=$(readlink -f "${1:?usage: many-sites.sh PATH/TO/pyvhost [N] [IDLE]}")
N=${2:-1000}
IDLE=${3:-10}
BUSY=${BUSY:-10}
PAR=${PAR:-4}
DEPLOYS=${DEPLOYS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
MS="$PY $HERE/manysites.py"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
T=$(mktemp -d /tmp/pyvhost-many-sites.XXXXXX); chmod 755 "$T"
# The apps' sockets go where the daemon's default puts them, /run: tmpfs on
# a real host. Where /run is not (containers, this VM), a tmpfs stands in:
# ext4 makes each of 10,000 binds after a restart search its recently freed
# inodes (5 s at start-up, none of it pyvhost's).
SOCKS=$T/socks
if [ "$(stat -f -c %T /run)" != tmpfs ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  SOCKS=$(mktemp -d /dev/shm/pyvhost-many-sites-socks.XXXXXX); chmod 755 "$SOCKS"
  echo "(/run is not tmpfs here: the apps' sockets are in $SOCKS)"
fi
export PYVHOST_NGINX_CONF=$T/nginx.conf PYVHOST_NGINX_PREFIX=$T PYVHOST_STATE_DIR=$T/state \
       PYVHOST_CTL=$T/run/ctl.sock PYVHOST_APP_SOCKETS=$SOCKS PYVHOST_APP_LOGS=$T/applogs
BUSYPID=""
cleanup() {
  touch "$T/stop"; [ -n "$BUSYPID" ] && wait "$BUSYPID" 2>/dev/null || true
  "$BIN" ctl shutdown >/dev/null 2>&1 || true
  "$NGINX" -p "$T" -c "$T/nginx.conf" -s quit 2>/dev/null || true
  [ -n "${DAEMON:-}" ] && while kill -0 "$DAEMON" 2>/dev/null; do sleep 0.1; done
  rm -rf "$T"
  if [ "$SOCKS" != "$T/socks" ]; then rm -rf "$SOCKS"; fi
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"   # as systemd's LimitNOFILE would

mkdir -p "$T"/{sites-available,sites-enabled,tmp,run,state,applogs}
cp /etc/nginx/uwsgi_params "$T/"
private_nginx_conf "$T"
sed -i 's/worker_connections 256;/worker_connections 4096;/' "$T/nginx.conf"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
USER_FLAG=()
[ "$(id -u)" = 0 ] && USER_FLAG=(--user www-data)
$PY -m venv "$T/venv"

site_flags() { # the deploy flags of site $1
  local n; n=$($MS name "$1")
  echo "$n --alias www.$n --app-dir $T/apps/$(printf 's%06d' "$1") --module app --venv $T/venv --listen 127.0.0.1:$PORT"
}
# shellcheck disable=SC2046
"$BIN" render $(site_flags 1) > "$T/template.conf"
t0=$(date +%s.%N)
$MS gen "$T/template.conf" "$T" "$N"
since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.2f s", a - b }'; }
echo "$N sites (server blocks, app dirs) written in $(since "$t0")"
sync # what follows should not wait on writing those back: a real box's config was written long ago

t0=$(date +%s.%N)
"$NGINX" -p "$T" -c "$T/nginx.conf"
echo "nginx started in $(since "$t0")"

t0=$(date +%s.%N)
"$BIN" uwsgi --vhost -M -p 2 --idle "$IDLE" --nginx-conf "$T/nginx.conf" --nginx-prefix "$T" --app-sockets "$SOCKS" \
  --ctl "$T/run/ctl.sock" --state-dir "$T/state" --app-logs "$T/applogs" --disable-logging >"$T/state/uwsgi.log" 2>&1 &
DAEMON=$!
until curl -fs -o /dev/null -H "Host: $($MS name "$N")" "http://127.0.0.1:$PORT/"; do
  kill -0 "$DAEMON" 2>/dev/null || { tail -20 "$T/state/uwsgi.log"; exit 1; }
  sleep 0.05
done
echo "daemon serving in $(since "$t0") (site $N's first request included); $($MS fds "$DAEMON") descriptors"

t0=$(date +%s.%N)
echo "first requests, every site once, $PAR at a time: $($MS visit "$PORT" 1 "$N" "$PAR") in $(since "$t0")"
$MS busy "$PORT" "$BUSY" "$T/stop" > "$T/busy1.out" &
BUSYPID=$!
echo "$BUSY sites kept busy: $($MS settle "$BIN" "$BUSY" $((IDLE * 3 + N / 20)))"
read -r PSS PROCS OWN < <($MS pss "$DAEMON")
echo "memory with $BUSY busy: PSS $((PSS / 1024)) MB in $PROCS processes (the daemon $((OWN / 1024)) MB); $($MS fds "$DAEMON") descriptors"
echo "a site stopped by --idle, one at a time: $($MS visit "$PORT" $((BUSY + 1)) $((BUSY + 50)) 1)"
touch "$T/stop"; wait "$BUSYPID"; BUSYPID=""; rm -f "$T/stop"
echo "busy sites meanwhile: $(cat "$T/busy1.out")"

sites_run() { "$BIN" sites >/dev/null; }
N_SITES=$N
N=3 time_runs "pyvhost sites ($N_SITES sites):" sites_run

NEXT=$N_SITES
deploy_run() { # deploys the next site
  NEXT=$((NEXT + 1))
  $MS app "$T" "$NEXT"
  # shellcheck disable=SC2046
  "$BIN" deploy $(site_flags "$NEXT") "${USER_FLAG[@]}" --yes >"$T/deploy.out" 2>&1 || { cat "$T/deploy.out"; exit 1; }
}
N=$DEPLOYS time_runs "deploy of site $((N_SITES + 1)) and on:" deploy_run
$MS busy "$PORT" "$BUSY" "$T/stop" > "$T/busy2.out" &
BUSYPID=$!
N=$DEPLOYS time_runs "the same, $BUSY sites kept busy:" deploy_run
touch "$T/stop"; wait "$BUSYPID"; BUSYPID=""
echo "busy sites during those deploys: $(cat "$T/busy2.out")"
