package deployer

// The daemon's re-read of the nginx config, beside the new config's
// nginx -t when the plan puts them one after the other.

// rereadFollowsTest is which nginx -t of the plan (1 the first, 0 none)
// the daemon's re-read comes right after (nginx's reload aside, when the
// test runs beside it): it then runs beside it (rereadEarly) — each
// parses every site, a second at 10,000 — as nothing between them (the
// app's settings, say) could change what the daemon reads.
func rereadFollowsTest(steps []Step) int {
	n := 0
	for i, s := range steps {
		if s.ID != StepNginxTest {
			continue
		}
		n++
		j := i + 1
		if j < len(steps) && steps[j].ID == StepNginxReload {
			j++
		}
		if j < len(steps) && steps[j].ID == StepDaemon {
			return n
		}
	}
	return 0
}

// rereadEarly starts the daemon's re-read of the files just written; the
// daemon step waits for it. A rollback re-reads again, after it.
func (d *Deployment) rereadEarly() {
	d.undo.daemonReread = true
	done := make(chan error, 1)
	d.reread = done
	go func() { done <- d.client.ReloadConfig() }()
}

// rereadDone waits for a re-read rereadEarly started (nil if none).
func (d *Deployment) rereadDone() error {
	if d.reread == nil {
		return nil
	}
	err := <-d.reread
	d.reread = nil
	return err
}
