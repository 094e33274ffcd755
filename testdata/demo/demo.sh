#!/usr/bin/env bash
# make demo: a private nginx on a free loopback port, pyvhost's uwsgi daemon
# started with uWSGI's classic flags, the example apps' server blocks
# written by `pyvhost render` (`pyvhost deploy` will do every step), listed
# by `pyvhost sites`, and requests answered through nginx.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/bin/pyvhost
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -f "$ROOT/.demo-dir" ]; then
  echo "a demo is already running in $(cat "$ROOT/.demo-dir"): run 'make demo-stop' first" >&2
  exit 1
fi
# Under /tmp so the apps' user (nobody, when run as root) can reach them.
D=$(mktemp -d /tmp/pyvhost-demo.XXXXXX)
chmod 755 "$D"
echo "$D" > "$ROOT/.demo-dir"
mkdir -p "$D"/{sites-available,sites-enabled,tmp,apps}
cp /etc/nginx/uwsgi_params "$D/"
cp -r "$ROOT/testdata/apps/hello" "$ROOT/testdata/apps/flaskapp" "$D/apps/"
# As root, each app runs as the owner of its directory: give them to nobody.
[ "$(id -u)" = 0 ] && chown -R nobody:nogroup "$D/apps"/*

read -r PORT UPORT < <(/usr/bin/python3 -c 'import socket
ps=[]
for _ in range(2):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ps.append(s.getsockname()[1]); s.close()
print(*ps)')

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

echo "== one virtualenv shared by both apps (Flask from Debian's python3-flask)"
/usr/bin/python3 -m venv --system-site-packages "$D/venv"

site() { # domain module app-dir
  "$BIN" render "$1" --app-dir "$D/apps/$3" --module "$2" --venv "$D/venv" \
    --socket "127.0.0.1:$UPORT" --listen "127.0.0.1:$PORT" > "$D/sites-available/$1.conf"
  ln -s "$D/sites-available/$1.conf" "$D/sites-enabled/$1.conf"
}
site hello.localhost hello hello
site flask.localhost flaskapp:app flaskapp
echo "== pyvhost render wrote:"
cat "$D/sites-available/hello.localhost.conf"

echo
echo "== pyvhost uwsgi -s 127.0.0.1:$UPORT -M -p 2 -t 30 --limit-as 512 -R 10000 -d uwsgi.log --vhost --nginx-conf nginx.conf"
"$BIN" uwsgi -s "127.0.0.1:$UPORT" -M -p 2 -t 30 --limit-as 512 -R 10000 -d "$D/uwsgi.log" --vhost \
  --nginx-conf "$D/nginx.conf" --pidfile "$D/uwsgi.pid" --ctl "$D/ctl/ctl.sock"
"$NGINX" -t -q -p "$D" -c "$D/nginx.conf"
"$NGINX" -p "$D" -c "$D/nginx.conf"

echo
echo "== pyvhost sites --nginx-conf $D/nginx.conf"
"$BIN" sites --nginx-conf "$D/nginx.conf"
echo
for h in hello.localhost flask.localhost; do
  echo "== curl -H 'Host: $h' http://127.0.0.1:$PORT/"
  for _ in $(seq 50); do
    out=$(curl -s -H "Host: $h" "http://127.0.0.1:$PORT/") && [ -n "$out" ] && break
    sleep 0.1
  done
  echo "$out"
done
echo
echo "== the daemon's log ($D/uwsgi.log):"
tail -n 4 "$D/uwsgi.log"
echo
echo "The demo runs in $D (nginx on 127.0.0.1:$PORT). Stop it with: make demo-stop"
