package deployer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/deployer/acmetest"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// TestRenewOrdersWithoutTheDeployLock: the daemon's renewal orders while
// a deploy holds the deploy lock (an order can take minutes; deploys do
// not wait for it), then waits for the lock to install the certificate,
// and installs it once the deploy is done.
func TestRenewOrdersWithoutTheDeployLock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pebble and nginx")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	listen := fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	challenge := fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t))
	pb := acmetest.Start(t, acmetest.Options{HTTPPort: acmetest.PortOf(listen), Validity: time.Hour})
	o := ACMEOptions{CA: pb.Dir, CARoot: pb.CARoot, Challenge: challenge, Storage: acmeStorage(state)}
	certs := certDir(state, "lock.test")
	cert, key := filepath.Join(certs, "fullchain.pem"), filepath.Join(certs, "privkey.pem")
	nginxtest.WriteCert(t, cert, key, 10*time.Minute, "lock.test") // due: 10 of its 70 minutes left
	site, err := nginxconf.Render(nginxconf.SiteSpec{Domain: "lock.test", Listen: listen, Apps: []nginxconf.AppSpec{{AppDir: "/srv/lock", Module: "lock"}},
		TLS: &nginxconf.TLSSpec{Listen: fmt.Sprintf("127.0.0.1:%d", nginxtest.FreePort(t)), Cert: cert, Key: key, Challenge: challenge}}, nginxconf.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxtest.MainConf(dir, string(site))), 0o644); err != nil {
		t.Fatal(err)
	}
	nginxtest.Start(t, conf, listen)
	tx, err := Begin(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeACMEMeta(certs, ACMEMeta{Domain: "lock.test", Names: []string{"lock.test"}, Options: o}, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	bin, err := nginxconf.NginxBinary()
	if err != nil {
		t.Fatal(err)
	}
	nginx := &Nginx{Runner: ExecRunner{}, Bin: bin, Conf: conf, Prefix: dir, PidFile: nginxconf.PidFile(bin, conf, dir)}

	deploy, err := TakeLock(state) // a deploy runs
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	locked := make(chan struct{})
	done := make(chan []Renewal)
	go func() {
		done <- RenewDue(ctx, state, nginx, RenewScope{Lock: func() (*Lock, error) {
			close(locked) // the order is in hand: now it wants the lock
			return WaitLock(ctx, state, "the daemon's certificate renewal", 30*time.Second)
		}}, time.Now())
	}()
	select {
	case <-locked:
	case r := <-done:
		t.Fatalf("the renewal ended before it wanted the deploy lock: %+v", r)
	case <-ctx.Done():
		t.Fatal("the renewal did not order while a deploy held the lock")
	}
	if pb.Orders(t) != 1 {
		t.Errorf("%d orders while the deploy held its lock, want 1", pb.Orders(t))
	}
	before, _ := os.ReadFile(cert)
	if err := deploy.Release(); err != nil { // the deploy is done
		t.Fatal(err)
	}
	if r := <-done; len(r) != 1 || !r[0].Renewed {
		t.Fatalf("RenewDue = %+v, want lock.test renewed", r)
	}
	if after, _ := os.ReadFile(cert); string(after) == string(before) {
		t.Error("the renewed certificate was not installed")
	}
}
