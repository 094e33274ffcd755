package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestMain keeps the commands under test away from this machine's real
// daemon and state: tests that want one pass --ctl / --state-dir.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pyvhost-cmd-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("PYVHOST_CTL", filepath.Join(dir, "no-daemon.sock"))
	os.Setenv("PYVHOST_STATE_DIR", filepath.Join(dir, "state"))
	daemontest.Main(m, func() { os.RemoveAll(dir) })
}
