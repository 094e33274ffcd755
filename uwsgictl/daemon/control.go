package daemon

import (
	"os"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Status is the daemon's summary for the control API.
func (d *Daemon) Status() control.Status {
	st := control.Status{Version: Version, PID: os.Getpid(), UptimeSec: time.Since(d.started).Seconds(), Sockets: []string{}}
	for _, l := range d.shared {
		st.Sockets = append(st.Sockets, l.addr)
	}
	for path := range d.appSockets {
		st.Sockets = append(st.Sockets, path)
	}
	st.RSS = pool.RSS(os.Getpid())
	for _, a := range d.Apps() {
		st.Apps++
		st.Requests += a.Requests
		st.Errors += a.Errors
		st.RSS += a.ZygoteRSS
		for _, w := range a.Workers {
			st.RSS += w.RSS
		}
	}
	return st
}

// AppList is every app for the control API.
func (d *Daemon) AppList() control.Apps {
	apps := d.Apps()
	if apps == nil {
		apps = []pool.AppStats{}
	}
	return control.Apps{Apps: apps}
}

// ctlBackend adapts the daemon to control.Backend.
type ctlBackend struct{ d *Daemon }

func (b ctlBackend) Status() control.Status { return b.d.Status() }
func (b ctlBackend) Apps() control.Apps     { return b.d.AppList() }
