package deployer

import (
	"context"
	"fmt"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// nginx -t beside the reload. nginx parses its whole config twice in a
// change — once for -t, once more when the master reloads — and at
// 10,000 sites each parse is over a second on two cores: the two in a row
// were most of a deploy. Where -t is that slow, the deploy starts it right
// after writing the files, reloads nginx and has the daemon re-read
// without waiting for it, and waits for its verdict (a step of its own)
// before the smoke test. nginx may then route to a new site's socket a
// moment before the daemon serves it: nothing asks for the new site
// before the smoke test, which comes after all three.
//   - a config nginx rejects fails the master's own reload too, which then
//     keeps serving the old one (the wait for the reload is cut short by
//     the test's verdict);
//   - a new warning — the config loads, nginx only complains — is found a
//     moment after the new config went live: the deploy fails, and its
//     rollback puts the old files back and reloads them.
// Either way the deploy fails and leaves nginx serving the old config, as
// with the test first. What is new is the moment a warned-about config
// can serve before it is taken back; pyvhost's own checks before any
// write (server names already taken on the port, the plan's files) leave
// nginx little to warn about. A small config keeps the test first: it
// takes milliseconds there.

// slowNginxTest is how long nginx -t must take (last time it ran on this
// config) for the deploy to run it beside the reload.
const slowNginxTest = 500 * time.Millisecond

// testBeside reports whether the plan runs nginx -t beside the reload: a
// slow test (or --nginx-test beside), one config change and one reload (an
// ACME order tests and reloads twice, a certificate must be checked as
// served), nginx running.
func testBeside(f Facts) bool {
	wanted := f.NginxTestMode == "beside" || (f.NginxTestMode != "before" && f.NginxTestTook >= slowNginxTest)
	return wanted && !f.ConfigSame && f.ACME == nil && f.Cert == nil && !f.NginxDown
}

// CheckNginxTestMode refuses a --nginx-test that is none of its values.
func CheckNginxTestMode(mode string) error {
	switch mode {
	case "", "auto", "before", "beside":
		return nil
	}
	return &nginxconf.InvalidError{Err: fmt.Errorf("--nginx-test %q: want before, beside or auto", mode)}
}

// besideTest is an nginx -t running beside the reload; done is closed
// when result and err are set.
type besideTest struct {
	cancel context.CancelFunc
	done   chan struct{}
	result TestResult
	err    error
}

// startTestBeside starts nginx -t of the written config.
func (d *Deployment) startTestBeside(ctx context.Context) {
	tctx, cancel := context.WithCancel(ctx)
	bt := &besideTest{cancel: cancel, done: make(chan struct{})}
	d.beside = bt
	go func() {
		defer close(bt.done)
		bt.result, bt.err = testNewConfig(tctx, d.opts.Nginx, d.before)
	}()
}

// reloadBeside reloads nginx while the test runs: a rejected config's
// reload cannot succeed, and its wait is cut short by the verdict (which
// besideVerdict reports). A test that failed before the reload began
// leaves nginx unasked.
func (d *Deployment) reloadBeside(ctx context.Context) error {
	bt := d.beside
	select {
	case <-bt.done:
		if bt.err != nil {
			return bt.err
		}
	default:
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-bt.done:
			if bt.err != nil {
				cancel()
			}
		case <-rctx.Done():
		}
	}()
	d.undo.nginxReloaded = true
	if err := d.opts.Nginx.Reload(rctx); err != nil {
		if rctx.Err() != nil && ctx.Err() == nil { // cut short: the verdict says why
			return d.besideVerdict()
		}
		return err
	}
	return nil
}

// besideVerdict waits for the test beside the reload: a rejected config
// or a new warning fails the deploy, whose rollback puts nginx back on
// the old config.
func (d *Deployment) besideVerdict() error {
	bt := d.beside
	<-bt.done
	if bt.err != nil {
		return fmt.Errorf("%w (nginx is put back on the old config)", bt.err)
	}
	d.noteTuning(bt.result)
	return nil
}

// stopTestBeside ends a test still running when a rollback begins: the
// files change under it, and what it said of them half old, half new must
// not be remembered (a cancelled test remembers nothing).
func (d *Deployment) stopTestBeside() {
	if d.beside != nil {
		d.beside.cancel()
		<-d.beside.done
	}
}
