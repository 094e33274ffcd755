package daemon

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// policy decides which apps may run: those the nginx configuration
// declares (the single source of truth) and those under a --vhost-root.
// Anything else is refused: the uwsgi protocol lets whoever reaches the
// socket name code to run, and pyvhost runs only what its operator put
// there.
type policy struct {
	mu        sync.Mutex
	nginxConf string
	roots     []string
	sockDir   string
	logf      func(string, ...any)

	declared   map[pool.Key]string // key -> name (server_name + location)
	sockets    map[string]pool.Key // per-app socket path -> the app it serves
	nginxUser  string
	loadedAt   time.Time // when the last read began
	readSeq    int       // reads begun
	appliedSeq int       // the read whose result is in force
}

func newPolicy(cfg *Config, logf func(string, ...any)) *policy {
	p := &policy{nginxConf: cfg.NginxConf, sockDir: cfg.AppSockets, logf: logf}
	for _, r := range cfg.VhostRoots {
		if abs, err := filepath.Abs(r); err == nil {
			p.roots = append(p.roots, filepath.Clean(abs))
		}
	}
	return p
}

// reload re-reads the nginx configuration. It reads without the lock —
// 10,000 sites take a second to parse — so apps start and requests are
// routed meanwhile on what was read before; of reads that overlap, the one
// begun last wins.
// It returns the tree it read (nil without an nginx config), for what
// else wants to look at it.
func (p *policy) reload() (*nginxconf.Tree, error) {
	p.mu.Lock()
	p.readSeq++
	seq := p.readSeq
	p.loadedAt = time.Now()
	p.mu.Unlock()
	tree, declared, sockets, user, err := p.read()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq > p.appliedSeq {
		p.appliedSeq = seq
		p.declared, p.sockets, p.nginxUser = declared, sockets, user
	}
	return tree, nil
}

// read is what the nginx configuration declares: the apps (with the name
// each is known by), the per-app sockets, the user nginx's workers run as.
func (p *policy) read() (*nginxconf.Tree, map[pool.Key]string, map[string]pool.Key, string, error) {
	declared := map[pool.Key]string{}
	sockets := map[string]pool.Key{}
	if p.nginxConf == "" {
		return nil, declared, sockets, "nobody", nil
	}
	restore := looseGC()
	defer restore()
	tree, err := nginxconf.Load(p.nginxConf)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("read nginx config: %w", err)
	}
	for _, s := range tree.Sites() {
		name := "_"
		if len(s.ServerNames) > 0 {
			name = s.ServerNames[0]
		}
		for _, a := range s.Apps {
			k := pool.Key{Pyhome: a.Pyhome, Chdir: a.Chdir, Script: a.Script}
			if k.Script == "" || strings.Contains(k.Pyhome+k.Chdir+k.Script, "$") {
				continue // set per request by variables: not a fixed app
			}
			if _, ok := declared[k]; !ok {
				declared[k] = name + strings.TrimSuffix(a.Location, "/")
			}
			if path, ok := strings.CutPrefix(a.UwsgiPass, "unix:"); ok && p.sockDir != "" &&
				filepath.Dir(filepath.Clean(path)) == filepath.Clean(p.sockDir) {
				if _, taken := sockets[path]; !taken {
					sockets[path] = k
				}
			}
		}
	}
	return tree, declared, sockets, tree.User(), nil
}

// allowed reports whether an app may run, and its name. An app the nginx
// configuration does not declare triggers a re-read, at most once a
// second, so a site added since start is found without a restart.
func (p *policy) allowed(k pool.Key) (string, error) {
	if err := nginxconf.ValidateModule("UWSGI_SCRIPT", k.Script); err != nil {
		return "", fmt.Errorf("%w: %w", control.ErrRefused, err)
	}
	p.mu.Lock()
	name, ok := p.declared[k]
	stale := p.nginxConf != "" && time.Since(p.loadedAt) > time.Second
	p.mu.Unlock()
	if ok {
		return name, nil
	}
	if stale {
		if _, err := p.reload(); err != nil {
			p.logf("%v", err)
		}
		p.mu.Lock()
		name, ok = p.declared[k]
		p.mu.Unlock()
		if ok {
			return name, nil
		}
	}
	if p.underRoot(k.Chdir) && (k.Pyhome == "" || p.underRoot(k.Pyhome)) {
		return "", nil
	}
	return "", fmt.Errorf("%w: app %s is not declared in the nginx config (%s) and not under a --vhost-root", control.ErrRefused, k, orNone(p.nginxConf))
}

func (p *policy) underRoot(dir string) bool {
	if dir == "" || !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return false
	}
	for _, r := range p.roots {
		if dir == r || strings.HasPrefix(dir, r+"/") || r == "/" {
			return true
		}
	}
	return false
}

func (p *policy) snapshot() (map[pool.Key]string, map[string]pool.Key, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.declared, p.sockets, p.nginxUser
}

func orNone(s string) string {
	if s == "" {
		return "none given"
	}
	return s
}
