package deployer

import (
	"context"
	"fmt"
	"strings"

	"github.com/pyvhost/pyvhost/uwsgictl/control"
)

// Repair finishes what an interrupted run (killed between writing nginx's
// files and committing) left: the files go back to their bytes from before
// that run, nginx is checked and reloaded (it may have loaded the
// half-done change), and a running daemon re-reads the config. It reports
// whether there was anything to repair.
func Repair(ctx context.Context, stateDir string, n *Nginx, ctl string) (bool, error) {
	repaired, err := Recover(stateDir)
	if err != nil || !repaired {
		return repaired, err
	}
	r, err := n.Test(ctx)
	if err != nil {
		return true, fmt.Errorf("repair: %w", err)
	}
	if !r.OK {
		return true, fmt.Errorf("repair: the restored config fails nginx -t: %s", strings.Join(r.Errors, "; "))
	}
	if err := n.Reload(ctx); err != nil {
		return true, fmt.Errorf("repair: %w", err)
	}
	if c, err := control.Dial(ctl); err == nil {
		if err := c.ReloadConfig(); err != nil {
			return true, fmt.Errorf("repair: the daemon could not re-read the config: %w", err)
		}
	}
	return true, nil
}
