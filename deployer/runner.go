// Package deployer takes a site from nothing to live: provision, write the
// nginx files transactionally, validate, reload, smoke-test, and roll back
// on any failure. External commands go through one Runner seam.
package deployer

import (
	"bytes"
	"context"
	"os/exec"
)

// Runner runs external commands (nginx, systemctl, pip…).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)
}

// ExecRunner runs commands for real.
type ExecRunner struct{}

// Run runs name with args and returns its output.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}
