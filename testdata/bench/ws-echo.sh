#!/usr/bin/env bash
# WebSocket echo throughput, pyvhost against uvicorn (Debian's, uvloop and
# its websockets implementation, 1 worker, on a unix socket behind nginx's
# proxy_pass with the upgrade headers its docs give) with the same bare
# ASGI echo app; pyvhost on its per-app socket through uwsgi_pass, 1 worker.
# A Go client (testdata/bench/wsecho) keeps CONNS sockets busy, each
# sending a 64-byte message and waiting for its echo. Prints the median of
# ROUNDS runs of messages per second and p99, and last:
#   ratio_msgs=X ratio_p99=Y ratio_cpu=Z   (pyvhost / uvicorn; CPU per message
#   of the server's processes)
# usage: ws-echo.sh PATH/TO/pyvhost [ROUNDS] [SECONDS]
set -euo pipefail
BIN=$(readlink -f "${1:?usage: ws-echo.sh PATH/TO/pyvhost [ROUNDS] [SECONDS]}")
ROUNDS=${2:-3}
SECS=${3:-4}
CONNS=${CONNS:-64}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d -t pyvhost-wsbench.XXXXXX); chmod 755 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  [ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/app" "$T/us" "$T/pvsock"
cat > "$T/app/echo.py" <<'PY'
async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            await send({"type": m["type"] + ".complete"})
            if m["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": m.get("bytes"), "text": m.get("text")})
PY
/usr/bin/python3 -m venv --system-site-packages "$T/venv"
chown -R nobody:nogroup "$T/app" "$T/us"
read -r NU NP < <(/usr/bin/python3 -c 'import socket
ps=[]
for _ in range(2):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ps.append(s)
print(*[s.getsockname()[1] for s in ps])')
cat > "$T/nginx.conf" <<CONF
worker_processes 1; pid $T/nginx.pid; error_log $T/nginx-error.log;
events { worker_connections 4096; }
http { access_log off; uwsgi_temp_path $T/ut; client_body_temp_path $T/bt; proxy_temp_path $T/pt;
  server { listen 127.0.0.1:$NU; server_name ws.test;
    location / { proxy_http_version 1.1; proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection "upgrade";
      proxy_set_header Host \$http_host; proxy_pass http://unix:$T/us/echo.sock; } }
  server { listen 127.0.0.1:$NP; server_name ws.test;
    location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$T/pvsock/echo.sock;
      uwsgi_param UWSGI_PYHOME $T/venv; uwsgi_param UWSGI_CHDIR $T/app; uwsgi_param UWSGI_SCRIPT echo; } }
}
CONF
nginx -p "$T" -c "$T/nginx.conf"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/venv/bin/python" -m uvicorn --uds "$T/us/echo.sock" \
  --app-dir "$T/app" --loop uvloop --ws websockets --no-access-log --log-level warning echo:application >"$T/uvicorn.log" 2>&1 &
PIDS+=($!); UV=$!
"$BIN" uwsgi -M -p 1 --vhost --disable-logging --ctl "$T/ctl.sock" --app-sockets "$T/pvsock" \
  --nginx-conf "$T/nginx.conf" >"$T/pyvhost.log" 2>&1 &
PIDS+=($!); PV=$!
for _ in $(seq 100); do
  curl -fs -H 'Host: ws.test' "http://127.0.0.1:$NU/" >/dev/null && curl -fs -H 'Host: ws.test' "http://127.0.0.1:$NP/" >/dev/null && break
  sleep 0.2
done
CLIENT=$T/wsecho
(cd "$ROOT" && go build -o "$CLIENT" ./testdata/bench/wsecho)
cpu_tree() { # CPU seconds of a process and its descendants
  /usr/bin/python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1]); kids = {}; stat = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            st = open(f"/proc/{d}/stat").read(); f = st[st.rfind(")") + 2:].split()
            kids.setdefault(int(f[1]), []).append(int(d)); stat[int(d)] = sum(int(x) for x in f[11:15])
        except OSError: pass
tot, todo = 0, [root]
while todo:
    p = todo.pop(); todo += kids.get(p, []); tot += stat.get(p, 0)
print(tot / os.sysconf("SC_CLK_TCK"))
PY
}
run() { # port, server pid: "msgs/s p99_ms cpu_us/msg"
  local c0 c1 out
  c0=$(cpu_tree "$2")
  out=$("$CLIENT" -url ws://ws.test/echo -addr "127.0.0.1:$1" -conns "$CONNS" -secs "$SECS")
  c1=$(cpu_tree "$2")
  awk -v o="$out" -v c0="$c0" -v c1="$c1" -v s="$SECS" 'BEGIN { split(o, a, " "); printf "%s %s %.1f\n", a[1], a[2], (c1 - c0) * 1e6 / (a[1] * s) }'
}
: > "$T/uv.txt"; : > "$T/pv.txt"
for r in $(seq "$ROUNDS"); do
  uv=$(run "$NU" "$UV"); pv=$(run "$NP" "$PV")
  read -r um up uc <<<"$uv"; read -r pm pp pc <<<"$pv"
  echo "round $r: uvicorn $um msg/s p99 $up ms $uc us-cpu/msg | pyvhost $pm msg/s p99 $pp ms $pc us-cpu/msg"
  echo "$uv" >> "$T/uv.txt"; echo "$pv" >> "$T/pv.txt"
done
/usr/bin/python3 - "$T/uv.txt" "$T/pv.txt" <<'PY'
import statistics, sys
def med(path, i):
    return statistics.median(float(l.split()[i]) for l in open(path) if l.strip())
uv, pv = [tuple(med(f, i) for i in range(3)) for f in sys.argv[1:3]]
print("server     median msg/s   p99 ms   cpu us/msg")
print("uvicorn    %12.1f %8.3f %10.1f" % uv)
print("pyvhost    %12.1f %8.3f %10.1f" % pv)
print("ratio_msgs=%.2f ratio_p99=%.2f ratio_cpu=%.2f" % (pv[0] / uv[0], pv[1] / uv[1], pv[2] / uv[2]))
PY
