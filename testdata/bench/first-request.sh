#!/usr/bin/env bash
# Cold start: time from a request's arrival to its answer for a hello app
# that was never loaded (no process yet), for 5 apps; prints the median.
# usage: first-request.sh PATH/TO/pyvhost
set -euo pipefail
BIN=$(readlink -f "${1:?usage: first-request.sh PATH/TO/pyvhost}")
T=$(mktemp -d -t pyvhost-cold.XXXXXX); chmod 755 "$T"
trap 'kill $PV 2>/dev/null; sleep 0.3; rm -rf "$T"' EXIT
/usr/bin/python3 -m venv "$T/venv"
for n in 1 2 3 4 5; do
  mkdir -p "$T/app$n"
  cp "$(dirname "$0")/../apps/hello/hello.py" "$T/app$n/hello$n.py"
done
[ "$(id -u)" = 0 ] && chown -R nobody:nogroup "$T"/app*
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" uwsgi -s "127.0.0.1:$PORT" -p 2 --vhost-root "$T" --disable-logging > "$T/pv.log" 2>&1 &
PV=$!
sleep 0.5
/usr/bin/python3 - "$T" "$PORT" <<'PY'
import socket, struct, sys, time, statistics
T, port = sys.argv[1], int(sys.argv[2])
def req(n):
    v = [("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("PATH_INFO", "/"),
         ("UWSGI_PYHOME", T + "/venv"), ("UWSGI_CHDIR", "%s/app%d" % (T, n)), ("UWSGI_SCRIPT", "hello%d" % n)]
    blk = b"".join(struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(x)) + x.encode() for k, x in v)
    s = socket.create_connection(("127.0.0.1", port))
    t = time.perf_counter()
    s.sendall(struct.pack("<BHB", 0, len(blk), 0) + blk)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    el = time.perf_counter() - t
    assert out.startswith(b"HTTP/1.1 200"), out
    return el * 1000
times = [req(n) for n in range(1, 6)]
print("first request to a never-loaded app: median %.1f ms (all: %s)" % (statistics.median(times), ", ".join("%.1f" % x for x in times)))
PY
