#!/usr/bin/env bash
# make demo-stop: stop everything `make demo` started (the daemon and its
# apps, nginx) and remove its files.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$ROOT/.demo-dir" ] || { echo "no demo is running"; exit 0; }
D=$(cat "$ROOT/.demo-dir")
stop() { # pidfile signal
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
stop "$D/nginx.pid" QUIT
stop "$D/state/uwsgi.pid" TERM
rm -rf "$D" "$ROOT/.demo-dir"
echo "demo stopped"
