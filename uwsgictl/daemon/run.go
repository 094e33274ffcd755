package daemon

// The daemon's life once started: its listeners, signals, systemd's
// readiness protocol, reloads.

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Run serves until ctx ends or a signal says stop: SIGTERM or SIGINT
// finish in-flight requests, SIGQUIT stops at once, SIGHUP reloads every
// app and re-reads the nginx config, SIGUSR1 reopens the log.
func (d *Daemon) Run(ctx context.Context) error {
	defer signal.Stop(d.sigs)
	for _, l := range d.shared {
		d.log.logf("uwsgi socket %s bound", l.addr)
	}
	d.log.logf("pyvhost daemon pid %d ready: up to %d workers per app", os.Getpid(), d.cfg.Processes)
	w, err := newWatcher()
	if err != nil {
		d.shutdown(false)
		return err
	}
	go d.readForwards()
	go d.supervise(w)
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	go d.renewLoop(renewCtx)
	if d.cfg.StatusHTTP != "" || d.cfg.Ctl != "" { // someone may look at the status page
		go d.keepHistory(renewCtx, historyStep(d.cfg))
	}
	if d.cfg.Stats != "" {
		if err := d.serveStats(d.cfg.Stats); err != nil {
			d.shutdown(false)
			return err
		}
	}
	if d.cfg.StatusHTTP != "" {
		stateDir := d.cfg.StateDir
		if stateDir == "" {
			stateDir = DefaultStateDir()
		}
		if err := d.serveStatusHTTP(d.cfg.StatusHTTP, d.cfg.StatusPublic, stateDir); err != nil {
			d.shutdown(false)
			return err
		}
	}
	if d.cfg.Ctl != "" {
		ctl, err := control.Listen(d.cfg.Ctl, ctlBackend{d}, d.statusPage())
		if err != nil {
			d.shutdown(false)
			return err
		}
		defer ctl.Close()
		d.log.logf("control socket %s", d.cfg.Ctl)
	}
	d.notify.ready(fmt.Sprintf("serving on %d sockets", len(d.shared)+len(d.appSockets)))
	defer d.notify.close()
	return d.serveSignals(ctx)
}

// serveSignals runs the daemon's life after start: signals, a shutdown
// asked for on the control socket, systemd's watchdog.
func (d *Daemon) serveSignals(ctx context.Context) error {
	watchdog, stopWatchdog := d.notify.ticks()
	defer stopWatchdog()
	stop := func(graceful bool) error {
		d.notify.stopping()
		d.shutdown(graceful)
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return stop(true)
		case <-watchdog:
			d.notify.ping() // the loop that answers signals is alive
		case <-d.shutdownReq:
			d.log.logf("shutdown requested on the control socket: finishing in-flight requests, then exiting")
			return stop(true)
		case s := <-d.sigs:
			switch s {
			case syscall.SIGHUP:
				d.notify.reloading()
				d.Reload()
				d.notify.ready("reloaded")
			case syscall.SIGUSR1:
				if err := d.log.reopen(); err != nil {
					d.log.logf("reopen log: %v", err)
				}
			case syscall.SIGQUIT:
				d.log.logf("SIGQUIT: stopping now")
				return stop(false)
			default:
				d.log.logf("%s: finishing in-flight requests, then exiting", s)
				return stop(true)
			}
		}
	}
}

// Reload re-reads the nginx configuration and reloads every running app
// gracefully: new workers first, then the old ones drain.
func (d *Daemon) Reload() {
	d.log.logf("reload: re-reading %s and reloading every app", orNone(d.cfg.NginxConf))
	if _, err := d.policy.reload(); err != nil {
		d.log.logf("reload: %v (keeping the previous nginx config)", err)
	} else if _, err := d.syncAppSockets(); err != nil { // replaced pools stop on their own
		d.log.logf("reload: %v", err)
	}
	for _, a := range d.appList() {
		if a.Running() {
			if n, err := d.refresh(a); err == nil && n == a {
				a.Reload()
			} else if err == nil {
				go d.takeOver(a, n) // a larger pool takes over: it starts, then the old one stops
			}
		}
	}
}
