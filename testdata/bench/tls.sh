#!/usr/bin/env bash
# HTTPS deploy timing against a real ACME server (pebble, go.mod's pinned
# tool, validating through a private nginx): (1) deploy --tls auto of a new
# site — challenge location live, pre-check, order, TLS block, smoke test
# over https — and (2) a redeploy of that TLS site with changed code (no
# order: the certificate is valid), beside (3) the same redeploy of an HTTP
# site. Prints the median, min and max of N runs of each. Targets: a TLS
# redeploy as fast as an HTTP one, no order.
# usage: tls.sh PATH/TO/pyvhost [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=$(readlink -f "${1:?usage: tls.sh PATH/TO/pyvhost [N]}")
N=${2:-7}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PEBBLE=$(cd "$ROOT" && go tool -n pebble); CHALLTESTSRV=$(cd "$ROOT" && go tool -n pebble-challtestsrv)
T=$(mktemp -d /tmp/pyvhost-tls.XXXXXX); chmod 755 "$T"
export PYVHOST_NGINX_CONF=$T/nginx.conf PYVHOST_NGINX_PREFIX=$T PYVHOST_STATE_DIR=$T/state \
       PYVHOST_CTL=$T/run/ctl.sock PYVHOST_APP_SOCKETS=$T/socks PYVHOST_APP_LOGS=$T/applogs
PIDS=()
cleanup() {
  "$BIN" ctl shutdown >/dev/null 2>&1 || true
  "$NGINX" -p "$T" -c "$T/nginx.conf" -s quit 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5; rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T"/{sites-available,sites-enabled,tmp,app}
cp /etc/nginx/uwsgi_params "$T/"
cp "$ROOT/testdata/apps/hello/hello.py" "$T/app/"
private_nginx_conf "$T"
read -r HTTP HTTPS ACME MGMT DNS DNSM CHAL TLSP < <(/usr/bin/python3 -c 'import socket
ps=[]
for _ in range(8):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ps.append(s); 
print(*[s.getsockname()[1] for s in ps])')

# pebble: its own listener's certificate, its DNS (every name is 127.0.0.1).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$T/pebble.key" -out "$T/pebble.crt" 2>/dev/null
cat > "$T/pebble.json" <<J
{"pebble": {"listenAddress": "127.0.0.1:$ACME", "managementListenAddress": "127.0.0.1:$MGMT",
 "certificate": "$T/pebble.crt", "privateKey": "$T/pebble.key", "httpPort": $HTTP, "tlsPort": $TLSP,
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
J
"$CHALLTESTSRV" -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dnsserver "127.0.0.1:$DNS" -doh "" -http01 "" -https01 "" \
  -tlsalpn01 "" -management "127.0.0.1:$DNSM" >"$T/challtestsrv.log" 2>&1 &
PIDS+=($!)
PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 "$PEBBLE" -config "$T/pebble.json" -dnsserver "127.0.0.1:$DNS" >"$T/pebble.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "Listening on" "$T/pebble.log" && break; sleep 0.1; done

USER_FLAG=()
[ "$(id -u)" = 0 ] && USER_FLAG=(--user www-data)
deploy() { "$BIN" deploy "$1" --app-dir "$T/app" --module hello --python /usr/bin/python3 "${USER_FLAG[@]}" \
  --listen "127.0.0.1:$HTTP" --yes "${@:2}" >/dev/null; }
tls() { deploy "$1" --https-listen "127.0.0.1:$HTTPS" --tls auto --acme-ca "https://127.0.0.1:$ACME/dir" \
  --acme-ca-root "$T/pebble.crt" --acme-challenge "127.0.0.1:$CHAL" --acme-http-port "$HTTP" --acme-resolver "127.0.0.1:$DNS"; }
deploy plain.test   # first deploy: venv, daemon, nginx

orders() { grep -c "POST /order-plz" "$T/pebble.log" || true; }
new_site() { tls "new$1.test"; }
tls_redeploy() { echo "# change $1" >> "$T/app/hello.py"; tls new1.test; }
http_redeploy() { echo "# change $1" >> "$T/app/hello.py"; deploy plain.test; }
time_runs "deploy --tls auto, a new site:" new_site
before=$(orders)
time_runs "redeploy of a TLS site, new code:" tls_redeploy
echo "    orders during the TLS redeploys: $(( $(orders) - before ))"
time_runs "redeploy of an HTTP site, new code:" http_redeploy
