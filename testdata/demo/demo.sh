#!/usr/bin/env bash
# make demo: from nothing to two live sites with `pyvhost deploy`. A private
# nginx config on a free loopback port (nginx is not running yet: the first
# deploy starts it), the example apps copied from testdata/apps, and two
# deploys: the first creates the shared virtualenv and starts pyvhost's
# uwsgi daemon, the second adds a site to the running daemon. Then the
# sites are listed and curled. `make demo-stop` stops everything.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/bin/pyvhost

if [ -f "$ROOT/.demo-dir" ]; then
  echo "a demo is already running in $(cat "$ROOT/.demo-dir"): run 'make demo-stop' first" >&2
  exit 1
fi
# Under /tmp so the apps' user (www-data, when run as root) can reach them.
D=$(mktemp -d /tmp/pyvhost-demo.XXXXXX)
chmod 755 "$D"
echo "$D" > "$ROOT/.demo-dir"
mkdir -p "$D"/{sites-available,sites-enabled,tmp,apps}
cp /etc/nginx/uwsgi_params "$D/"
cp -r "$ROOT/testdata/apps/hello" "$ROOT/testdata/apps/flaskapp" "$D/apps/"
mkdir -p "$D/apps/fastapi" && cp "$ROOT/testdata/apps/asgi/fastapiapp.py" "$D/apps/fastapi/"

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$D/nginx.conf" <<CONF
pid $D/nginx.pid;
error_log $D/nginx-error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 256; }
http {
    access_log $D/nginx-access.log;
    client_body_temp_path $D/tmp/body;
    proxy_temp_path $D/tmp/proxy;
    fastcgi_temp_path $D/tmp/fastcgi;
    uwsgi_temp_path $D/tmp/uwsgi;
    scgi_temp_path $D/tmp/scgi;
    include sites-enabled/*;
}
CONF

# Where this demo's nginx, state, control socket and per-app sockets are:
# on a real server these are /etc/nginx/nginx.conf, /var/lib/pyvhost,
# /run/pyvhost/ctl.sock, /run/pyvhost/apps and /var/log/pyvhost/apps, and
# none of this is needed.
export PYVHOST_NGINX_CONF=$D/nginx.conf PYVHOST_NGINX_PREFIX=$D PYVHOST_STATE_DIR=$D/state \
       PYVHOST_CTL=$D/run/ctl.sock PYVHOST_APP_SOCKETS=$D/socks PYVHOST_APP_LOGS=$D/applogs
USER_FLAG=()
[ "$(id -u)" = 0 ] && USER_FLAG=(--user www-data)

run() { echo; echo "\$ $*"; "$@"; }
# Debian's interpreter: its python3-flask is what --system-site-packages shares.
run "$BIN" deploy hello.localhost --app-dir "$D/apps/hello" --module hello \
  --venv "$D/venv" --python /usr/bin/python3 --system-site-packages \
  --listen "127.0.0.1:$PORT" "${USER_FLAG[@]}" --yes
run "$BIN" deploy flask.localhost --app-dir "$D/apps/flaskapp" --module flaskapp:app \
  --venv "$D/venv" --listen "127.0.0.1:$PORT" "${USER_FLAG[@]}" --yes
# An ASGI app (FastAPI's first steps): the same command; it is async, so
# it is served as ASGI.
run "$BIN" deploy fastapi.localhost --app-dir "$D/apps/fastapi" --module fastapiapp:app \
  --venv "$D/venv" --listen "127.0.0.1:$PORT" "${USER_FLAG[@]}" --yes

run "$BIN" sites
for h in hello.localhost flask.localhost; do
  run curl -s -H "Host: $h" "http://127.0.0.1:$PORT/"
done
run curl -s -H "Host: fastapi.localhost" "http://127.0.0.1:$PORT/items/5?q=demo"
echo
run "$BIN" ctl apps
echo
echo "The demo runs in $D: nginx on 127.0.0.1:$PORT, the daemon's log in $D/state/uwsgi.log."
echo "Try:  export PYVHOST_NGINX_CONF=$D/nginx.conf PYVHOST_NGINX_PREFIX=$D PYVHOST_STATE_DIR=$D/state PYVHOST_CTL=$D/run/ctl.sock PYVHOST_APP_SOCKETS=$D/socks PYVHOST_APP_LOGS=$D/applogs"
echo "      $BIN logs hello.localhost"
echo "      $BIN ctl top"
echo "Stop it with: make demo-stop"
