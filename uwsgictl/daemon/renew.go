package daemon

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Certificates obtained with deploy --tls auto are renewed here, in the
// daemon that always runs (no cron job to lose): every --cert-check, each
// one with a third of its life left (or that the CA's renewal info asks
// for) is ordered again — without the deploy lock: an order can take
// minutes — then, under the lock, written over the old one, nginx -t,
// nginx reloaded; a failure keeps the old one serving, is logged loudly,
// and backs off.

// renewLockWait is how long a renewed certificate waits for a deploy to
// finish before it is installed (the order is not kept: the next check
// orders again).
const renewLockWait = 5 * time.Minute

// renewLoop checks certificates until ctx ends; the first check comes
// soon after start (a certificate may have come due while the daemon was
// down).
func (d *Daemon) renewLoop(ctx context.Context) {
	every := d.cfg.CertCheck
	if every <= 0 {
		every = time.Hour
	}
	wait := min(every, 10*time.Second) // the certificates were noted when New read the config
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		d.renewDue(ctx, false)
		d.noteCerts(nil)
		// Jitter: many machines set up alike do not all ask the CA at once.
		wait = every + time.Duration(rand.Int64N(int64(every/10)+1))
	}
}

// renewDue renews what is due (all with force); it reports how many
// certificates were renewed.
func (d *Daemon) renewDue(ctx context.Context, force bool) int {
	if d.settingsDir == "" || d.cfg.NginxConf == "" {
		return 0
	}
	if sites, _ := deployer.ACMESites(d.settingsDir); len(sites) == 0 {
		return 0 // nothing to renew: not even the lock
	}
	bin, err := nginxconf.NginxBinary()
	if err != nil {
		d.log.logf("certificate renewal: %v", err)
		return 0
	}
	nginx := &deployer.Nginx{Runner: deployer.ExecRunner{}, Bin: bin, Conf: d.cfg.NginxConf, Prefix: d.cfg.NginxPrefix,
		PidFile: nginxconf.PidFile(bin, d.cfg.NginxConf, d.cfg.NginxPrefix)}
	n := 0
	for _, r := range deployer.RenewDue(ctx, d.settingsDir, nginx, deployer.RenewScope{Force: force, Lock: func() (*deployer.Lock, error) {
		return deployer.WaitLock(ctx, d.settingsDir, "the daemon's certificate renewal", renewLockWait)
	}}, time.Now()) {
		switch {
		case r.Err != nil && r.Domain == "":
			d.log.logf("certificate renewal: %v", r.Err)
		case r.Err != nil:
			st := deployer.ReadCertStatus(d.settingsDir, r.Domain)
			d.log.logf("*** CERTIFICATE RENEWAL FAILED for %s: %v; the old certificate keeps serving; next attempt %s ***",
				r.Domain, r.Err, st.NextAttempt.Format(time.RFC3339))
		default:
			n++
			d.log.logf("certificate of %s renewed and nginx reloaded", r.Domain)
		}
	}
	return n
}

// noteCerts keeps the TLS sites' certificates for the status (read at each
// renewal check and re-read of the config, not on every status request),
// from tree when the caller has just loaded it, else from a load of its
// own.
func (d *Daemon) noteCerts(tree *nginxconf.Tree) {
	if d.settingsDir == "" || d.cfg.NginxConf == "" {
		return
	}
	var infos []deployer.CertInfo
	if tree != nil {
		infos = deployer.CertsIn(d.settingsDir, tree)
	} else {
		var err error
		if infos, err = deployer.Certs(d.settingsDir, d.cfg.NginxConf); err != nil {
			return
		}
	}
	certs := make([]control.Cert, 0, len(infos))
	for _, ci := range infos {
		last := ci.LastError
		if last == "" {
			last = ci.Error
		}
		certs = append(certs, control.Cert{Domain: ci.Domain, NotAfter: ci.NotAfter, Auto: ci.Auto, NextRenewal: ci.NextRenewal, LastError: last})
	}
	d.certs.Store(&certs)
}
