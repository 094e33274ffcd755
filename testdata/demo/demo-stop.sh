#!/usr/bin/env bash
# make demo-stop: stop everything `make demo` started and remove its files.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$ROOT/.demo
stop() { # pidfile signal
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
stop "$D/uwsgi.pid" INT
stop "$D/nginx.pid" QUIT
rm -rf "$D"
echo "demo stopped"
