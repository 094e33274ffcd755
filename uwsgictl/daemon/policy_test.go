package daemon

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
	"github.com/pyvhost/pyvhost/uwsgictl/wire"
)

func TestPolicy(t *testing.T) {
	conf, _ := filepath.Abs("../../testdata/nginx/managed-mounts/nginx.conf")
	p := newPolicy(&Config{NginxConf: conf, VhostRoots: []string{"/var/www", "/srv/venvs/"}, AppSockets: "/run/pyvhost/apps"}, t.Logf)
	if _, err := p.reload(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  pool.Key
		name string // "" with ok: allowed by a root
		ok   bool
	}{
		{key("/srv/site/.venv", "/srv/site", "site.wsgi:application"), "example.com", true},
		{key("/srv/blog/.venv", "/srv/blog", "blog.wsgi"), "example.com/blog", true},
		{key("/srv/venvs/a", "/var/www/app1", "myapp1"), "", true},
		{key("", "/var/www/app1", "myapp1"), "", true},
		{key("/tmp/evil", "/var/www/app1", "myapp1"), "", false},      // venv outside the roots
		{key("", "/var/www-evil/app", "app"), "", false},              // a prefix, not a parent
		{key("", "/var/www/../etc", "app"), "", false},                // not clean
		{key("/srv/site/.venv", "/srv/site", "site.wsgi"), "", false}, // not the declared triple
		{key("", "/var/www/app1", "exec://id"), "", false},            // a scheme, not a module
		{key("", "/var/www/app1", "os.system('id')"), "", false},
	}
	for _, tc := range tests {
		name, err := p.allowed(tc.key)
		if (err == nil) != tc.ok || (tc.ok && name != tc.name) {
			t.Errorf("allowed(%v) = %q, %v; want ok=%v name %q", tc.key, name, err, tc.ok, tc.name)
		}
		// A refusal is a control.ErrRefused, and says "refused" once (the
		// control API passes it on as it is).
		if err != nil && (!errors.Is(err, control.ErrRefused) || strings.Count(err.Error(), "refused") != 1) {
			t.Errorf("allowed(%v): %q, want one control.ErrRefused", tc.key, err)
		}
	}
	if _, _, user := p.snapshot(); user != "nobody" {
		t.Errorf("nginx user %q, want nginx's default nobody", user)
	}
}

func TestPolicyAppSockets(t *testing.T) {
	conf, _ := filepath.Abs("../../testdata/nginx/managed-mounts/nginx.conf")
	p := newPolicy(&Config{NginxConf: conf, AppSockets: "/run/pyvhost/apps/"}, t.Logf)
	// the managed-mounts tree points both apps at unix:/run/pyvhost/apps/...
	if _, err := p.reload(); err != nil {
		t.Fatal(err)
	}
	_, sockets, _ := p.snapshot()
	if k, ok := sockets["/run/pyvhost/apps/example.com_blog.sock"]; !ok || k.Chdir != "/srv/blog" {
		t.Fatalf("per-app sockets: %v", sockets)
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		vars []wire.Var
		want pool.Key
	}{
		{[]wire.Var{{Key: "UWSGI_PYHOME", Value: "/v"}, {Key: "UWSGI_CHDIR", Value: "/a"}, {Key: "UWSGI_SCRIPT", Value: "m"}}, key("/v", "/a", "m")},
		{[]wire.Var{{Key: "UWSGI_HOME", Value: "/h"}, {Key: "UWSGI_CHDIR", Value: "/a"}, {Key: "UWSGI_MODULE", Value: "pkg.w"}, {Key: "UWSGI_CALLABLE", Value: "app"}}, key("/h", "/a", "pkg.w:app")},
		{[]wire.Var{{Key: "UWSGI_SCRIPT", Value: "s"}, {Key: "UWSGI_MODULE", Value: "m"}}, key("", "", "s")},
		{[]wire.Var{{Key: "UWSGI_SCRIPT", Value: "first"}, {Key: "UWSGI_SCRIPT", Value: "last"}}, key("", "", "last")},
	}
	for _, tc := range tests {
		if got := keyOf(&wire.Request{Vars: tc.vars}); got != tc.want {
			t.Errorf("keyOf(%v) = %v, want %v", tc.vars, got, tc.want)
		}
	}
}

func TestIsAllInterfaces(t *testing.T) {
	for addr, want := range map[string]bool{":9090": true, "0.0.0.0:9090": true, "127.0.0.1:9090": false, "/run/x.sock": false, "[::]:9090": true} {
		if got := isAllInterfaces(addr); got != want {
			t.Errorf("isAllInterfaces(%q) = %v", addr, got)
		}
	}
}

func key(pyhome, chdir, script string) pool.Key {
	return pool.Key{Pyhome: pyhome, Chdir: chdir, Script: script}
}
