# Shared by the benchmark scripts of testdata/bench: source it.

# private_nginx_conf DIR: DIR/nginx.conf for a private nginx (run as root
# when we are) including DIR/sites-enabled/*, its temp files in DIR/tmp.
private_nginx_conf() {
  local T=$1
  cat > "$T/nginx.conf" <<CONF
pid $T/nginx.pid;
error_log $T/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $T/tmp/body; proxy_temp_path $T/tmp/proxy; fastcgi_temp_path $T/tmp/fastcgi;
    uwsgi_temp_path $T/tmp/uwsgi; scgi_temp_path $T/tmp/scgi;
    include sites-enabled/*;
}
CONF
}

# time_runs LABEL CMD…: runs CMD N times (N from the caller), the run's
# number as its last argument; prints the median, min and max wall time.
time_runs() {
  local label=$1; shift
  local times=()
  for i in $(seq "$N"); do
    local t0 t1
    t0=$(date +%s.%N); "$@" "$i"; t1=$(date +%s.%N)
    times+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v l="$label" -v n="$N" '{a[NR]=$1} END {printf "%-36s median %.3f s  min %.3f s  max %.3f s  (%d runs)\n", l, a[int((n+1)/2)], a[1], a[n], n}'
}
