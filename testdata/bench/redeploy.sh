#!/usr/bin/env bash
# Redeploy timing: a hello site with its venv in place is deployed again
# (1) with changed code — the app reloads in the daemon, no nginx change —
# and (2) with changed flags (another listen port) — a new server block,
# nginx -t, reload, smoke test; then, under load (wrk through nginx), (3)
# with a changed environment variable and (4) with changed --processes
# (2 <-> 6: a new pool takes over, then it shrinks in place), counting the
# requests that failed meanwhile. A deploy returns once the change is in
# force, so its wall time is the time to take effect. Prints the median,
# min and max of N runs of each. Targets: under 2 s; env/pool under 1 s,
# no failed request.
# usage: redeploy.sh PATH/TO/pyvhost [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=$(readlink -f "${1:?usage: redeploy.sh PATH/TO/pyvhost [N]}")
N=${2:-7}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
T=$(mktemp -d /tmp/pyvhost-redeploy.XXXXXX); chmod 755 "$T"
export PYVHOST_NGINX_CONF=$T/nginx.conf PYVHOST_NGINX_PREFIX=$T PYVHOST_STATE_DIR=$T/state \
       PYVHOST_CTL=$T/run/ctl.sock PYVHOST_APP_SOCKETS=$T/socks PYVHOST_APP_LOGS=$T/applogs
cleanup() {
  "$BIN" ctl shutdown >/dev/null 2>&1 || true
  "$NGINX" -p "$T" -c "$T/nginx.conf" -s quit 2>/dev/null || true
  sleep 0.5; rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T"/{sites-available,sites-enabled,tmp,app}
cp /etc/nginx/uwsgi_params "$T/"
cp "$(dirname "$0")/../apps/hello/hello.py" "$T/app/"
private_nginx_conf "$T"
read -r P1 P2 < <(/usr/bin/python3 -c 'import socket
ps=[]
for _ in range(2):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ps.append(s.getsockname()[1]); s.close()
print(*ps)')
USER_FLAG=()
[ "$(id -u)" = 0 ] && USER_FLAG=(--user www-data)
deploy() { "$BIN" deploy hello.test --app-dir "$T/app" --module hello --python /usr/bin/python3 "${USER_FLAG[@]}" --yes "$@" >/dev/null; }
deploy --listen "127.0.0.1:$P1"   # first deploy: venv, daemon, nginx

code_change() { echo "# change $1" >> "$T/app/hello.py"; deploy; }
flag_change() { if [ $(($1 % 2)) = 1 ]; then deploy --listen "127.0.0.1:$P2"; else deploy --listen "127.0.0.1:$P1"; fi; }
time_runs "redeploy, changed code:" code_change
time_runs "redeploy, changed flags (listen):" flag_change

if command -v wrk >/dev/null; then
  env_change() { deploy --env "BENCH_RUN=$1"; }
  pool_change() { if [ $(($1 % 2)) = 1 ]; then deploy --processes 6; else deploy --processes 2; fi; }
  under_load() { # label, command: the command's runs while wrk loads the site
    local out=$T/wrk.out
    wrk -t1 -c8 -d600s -H "Host: hello.test" "http://127.0.0.1:$P1/" >"$out" 2>&1 &
    local wrk=$!
    sleep 1
    time_runs "$@"
    kill -INT "$wrk"; wait "$wrk" || true
    local bad errs reqs
    reqs=$(awk '/requests in/ {print $1}' "$out")
    bad=$(awk '/Non-2xx/ {print $NF}' "$out"); errs=$(awk '/Socket errors/ {print}' "$out")
    echo "    under load: ${reqs:-?} requests, non-2xx: ${bad:-0}${errs:+, $errs}"
  }
  deploy --listen "127.0.0.1:$P1"
  under_load "redeploy, changed env, under load:" env_change
  under_load "redeploy, changed --processes, load:" pool_change
else
  echo "(wrk not installed: the env and pool redeploys under load are skipped; apt-get install wrk)"
fi
