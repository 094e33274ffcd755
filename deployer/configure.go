package deployer

import (
	"errors"
	"fmt"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Configured is what Configure did.
type Configured struct {
	Changed  bool   // the stored settings changed
	Reloaded bool   // the running app was reloaded with them
	Pending  string // why they are stored but not yet in force ("" = in force)
}

// Configure changes an app's stored settings (`pyvhost config`): change
// edits a copy of them; the result is stored (root-only, atomically) and,
// when reload is set and the daemon runs the app, the app is reloaded with
// zero downtime. If that reload fails (the app does not import with its
// new environment), the old settings are stored again and the old code
// keeps serving with them. The caller holds the deploy lock.
func Configure(env Env, app nginxconf.AppSpec, reload bool, change func(*appconf.Settings) error) (Configured, error) {
	key := KeyOf(app)
	old, err := appconf.Load(env.StateDir, key)
	if err != nil {
		return Configured{}, err
	}
	n, err := appconf.Load(env.StateDir, key) // a deep copy to edit
	if err != nil {
		return Configured{}, err
	}
	if err := change(&n); err != nil {
		return Configured{}, &nginxconf.InvalidError{Err: err}
	}
	if err := n.Pool.Validate(); err != nil {
		return Configured{}, &nginxconf.InvalidError{Err: err}
	}
	if n.Stamp() == old.Stamp() {
		return Configured{}, nil
	}
	if err := appconf.Save(env.StateDir, n); err != nil {
		return Configured{}, err
	}
	res := Configured{Changed: true}
	if !reload {
		res.Pending = "stored without a reload (--no-reload): in force from the app's next reload or deploy"
		return res, nil
	}
	c, err := control.Dial(env.Ctl)
	if errors.Is(err, control.ErrNoDaemon) {
		res.Pending = "the daemon is not running: in force when it starts"
		return res, nil
	} else if err != nil {
		return res, err
	}
	a, ok, err := appOf(c, app)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, nil // the daemon reads them when it first makes the app's pool
	}
	if _, err := c.Reload(a.ID); err != nil {
		rerr := appconf.Save(env.StateDir, old)
		if rerr == nil {
			_, rerr = c.Reload(a.ID)
		}
		if rerr != nil {
			return res, fmt.Errorf("the app failed to reload with its new settings (%w), and putting the old ones back ALSO failed: %v", appError(err), rerr)
		}
		return Configured{}, fmt.Errorf("the app failed to reload with its new settings: %w; the old settings are stored again and still serve", appError(err))
	}
	res.Reloaded = running(a)
	if !res.Reloaded {
		res.Pending = "in force when the app next starts"
	}
	return res, nil
}
