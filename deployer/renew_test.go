package deployer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// TestRenewFailureKeepsTheCertificate: a due certificate whose CA cannot
// be reached is not touched, the failure is recorded with a backoff, and
// the next check within it does not try again; a certificate nginx no
// longer serves is left alone.
func TestRenewFailureKeepsTheCertificate(t *testing.T) {
	state := t.TempDir()
	dir := certDir(state, "due.test")
	cert, key := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	// Valid for 10 more minutes of its 70: a third of its life is left no more.
	nginxtest.WriteCert(t, cert, key, 10*time.Minute, "due.test")
	before, _ := os.ReadFile(cert)
	tx, err := Begin(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := ACMEOptions{CA: "https://127.0.0.1:1/dir", Challenge: "127.0.0.1:1", Storage: acmeStorage(state)}
	if err := writeACMEMeta(dir, ACMEMeta{Domain: "due.test", Names: []string{"due.test"}, Options: o}, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	site, err := nginxconf.Render(nginxconf.SiteSpec{Domain: "due.test", Apps: []nginxconf.AppSpec{{AppDir: "/srv/due", Module: "due"}},
		TLS: &nginxconf.TLSSpec{Cert: cert, Key: key, Challenge: "127.0.0.1:8402"}}, nginxconf.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "nginx.conf")
	if err := os.WriteFile(conf, []byte("events {}\nhttp {\n"+string(site)+"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nginx := &Nginx{Runner: ExecRunner{}, Bin: "/bin/false", Conf: conf}
	now := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := RenewDue(ctx, state, nginx, RenewScope{}, now)
	if len(got) != 1 || got[0].Err == nil || got[0].Domain != "due.test" || !strings.Contains(got[0].Err.Error(), "did not issue") {
		t.Fatalf("RenewDue = %+v, want one failure for due.test", got)
	}
	if after, _ := os.ReadFile(cert); string(after) != string(before) {
		t.Error("a failed renewal changed the certificate")
	}
	st := ReadCertStatus(state, "due.test")
	if st.Failures != 1 || st.LastError == "" || st.NextAttempt.Sub(now) != renewBackoff(1) {
		t.Errorf("status after the failure: %+v", st)
	}
	if again := RenewDue(ctx, state, nginx, RenewScope{}, now.Add(30*time.Second)); len(again) != 0 {
		t.Errorf("a check within the backoff tried again: %+v", again)
	}
	if renewBackoff(20) != 6*time.Hour || renewBackoff(2) != 2*time.Minute {
		t.Errorf("backoff: %s, %s", renewBackoff(2), renewBackoff(20))
	}
	// Not served any more (the site went back to HTTP): left alone.
	if err := os.WriteFile(conf, []byte("events {}\nhttp {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := RenewDue(ctx, state, nginx, RenewScope{Force: true}, now); len(got) != 0 {
		t.Errorf("a certificate nginx does not serve was renewed: %+v", got)
	}
}
