"""The many-sites benchmark's helper (many-sites.sh): makes N sites' files
as `pyvhost deploy` writes them, visits them, keeps some busy, and measures.

  manysites.py gen TEMPLATE T N     N app dirs in T/apps, their server blocks
                                    in T/sites-available (TEMPLATE: one block
                                    `pyvhost render` wrote for site 1), enabled
  manysites.py visit PORT FIRST LAST PAR   GET each site once, PAR at a time;
                                    prints the latencies' median/p99/max
  manysites.py name I               site I's name
  manysites.py app T I              the app dir of site I alone (to deploy it)
  manysites.py busy PORT K STOP     keeps sites 1..K busy until file STOP exists;
                                    prints the latencies' median/p99/max
  manysites.py settle BIN K SECS  waits until at most K apps run in the
                                    daemon (`BIN ctl apps --json`)
  manysites.py pss PID              PSS kB and process count of PID's tree, PID's own PSS kB
  manysites.py fds PID              PID's open descriptors

Every site answers its own name, so a visit checks it reached its own app.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

APP = '''def application(environ, start_response):
    body = b"site %d\\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


# Site names of many lengths, as real ones are: nginx keeps its upstreams
# (one per unix socket) in a list it searches by name for each uwsgi_pass,
# and names of one length cost it a full comparison each.
WORDS = ["a", "io", "api", "blog", "store", "portal", "billing", "helpdesk", "analytics",
         "onboarding", "marketplace", "documentation", "shop", "wiki", "status", "crm"]


def name(i):
    return "%s%d.bench.test" % (WORDS[i % len(WORDS)], i)


def gen(template, root, n):
    tpl = open(template).read()
    one = name(1)
    os.makedirs(os.path.join(root, "apps"), exist_ok=True)
    uid, gid = www_data()
    for i in range(1, n + 1):
        app_dir(root, i, uid, gid)
        conf = tpl.replace(one, name(i)).replace("/apps/s000001", "/apps/s%06d" % i)
        avail = os.path.join(root, "sites-available", name(i) + ".conf")
        with open(avail, "w") as f:
            f.write(conf)
        link = os.path.join(root, "sites-enabled", name(i) + ".conf")
        if not os.path.lexists(link):
            os.symlink(avail, link)


def app_dir(root, i, uid, gid):
    app = os.path.join(root, "apps", "s%06d" % i)
    os.makedirs(app, exist_ok=True)
    with open(os.path.join(app, "app.py"), "w") as f:
        f.write(APP % i)
    if uid is not None:
        os.chown(app, uid, gid)
        os.chown(os.path.join(app, "app.py"), uid, gid)


def www_data():
    if os.getuid() != 0:
        return None, None
    import pwd
    p = pwd.getpwnam("www-data")
    return p.pw_uid, p.pw_gid


def get(port, i, conn=None):
    """One GET of site i; returns (seconds, connection to reuse)."""
    t0 = time.monotonic()
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/", headers={"Host": name(i)})
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or body != b"site %d\n" % i:
        raise SystemExit("%s answered %d %r" % (name(i), r.status, body[:200]))
    return time.monotonic() - t0, c


def quantiles(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return "median %.1f ms  p99 %.1f ms  max %.1f ms  (%d requests)" % (
        q(0.5) * 1e3, q(0.99) * 1e3, xs[-1] * 1e3, len(xs))


def visit(port, first, last, par):
    with ThreadPoolExecutor(par) as ex:
        lat = list(ex.map(lambda i: get(port, i)[0], range(first, last + 1)))
    print(quantiles(lat))


def busy(port, k, stopfile):
    """Keep-alive clients, one per site. A kept-alive connection that nginx
    closes as it reloads (its old workers drop idle connections) is retried
    once on a new one, as browsers and HTTP libraries do; a request failing
    on a new connection ends the benchmark."""
    lat, lock, retries = [], threading.Lock(), [0]

    def loop(i):
        conn, mine = None, []
        while not os.path.exists(stopfile):
            t0 = time.monotonic()
            try:
                t, conn = get(port, i, conn)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if conn is None:
                    raise
                conn.close()
                with lock:
                    retries[0] += 1
                _, conn = get(port, i)
                t = time.monotonic() - t0
            mine.append(t)
        with lock:
            lat.extend(mine)

    errors = []

    def guarded(i):
        try:
            loop(i)
        except BaseException as e:  # SystemExit too: a thread's is otherwise lost
            errors.append("%s: %s" % (name(i), e))

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(1, k + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("requests failed: " + "; ".join(errors))
    print(quantiles(lat) + "; %d kept-alive connections closed by nginx, retried" % retries[0])


def running(bin_):
    out = subprocess.run([bin_, "ctl", "apps", "--json"], check=True, capture_output=True).stdout
    apps = json.loads(out)
    apps = apps.get("apps", apps) if isinstance(apps, dict) else apps
    return sum(1 for a in apps if a["state"] in ("ready", "starting"))


def settle(bin_, k, secs):
    t0 = time.monotonic()
    while True:
        n = running(bin_)
        if n <= k:
            print("%d apps running after %.1f s" % (n, time.monotonic() - t0))
            return
        if time.monotonic() - t0 > secs:
            raise SystemExit("%d apps still running after %.0f s" % (n, secs))
        time.sleep(0.5)


def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open("/proc/%s/stat" % d).read()
                ppid = int(st[st.rfind(")") + 2:].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def pss(pid):
    """PSS kB of PID's tree, its processes, and PID's own PSS kB."""
    total, n, own = 0, 0, 0
    for p in tree(pid):
        try:
            for line in open("/proc/%d/smaps_rollup" % p):
                if line.startswith("Pss:"):
                    kb = int(line.split()[1])
                    total, n = total + kb, n + 1
                    own = kb if p == pid else own
        except OSError:
            pass
    print(total, n, own)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "gen":
        gen(args[0], args[1], int(args[2]))
    elif cmd == "name":
        print(name(int(args[0])))
    elif cmd == "app":
        app_dir(args[0], int(args[1]), *www_data())
    elif cmd == "visit":
        visit(int(args[0]), int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "busy":
        busy(int(args[0]), int(args[1]), args[2])
    elif cmd == "settle":
        settle(args[0], int(args[1]), float(args[2]))
    elif cmd == "pss":
        pss(int(args[0]))
    elif cmd == "fds":
        print(len(os.listdir("/proc/%d/fd" % int(args[0]))))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
