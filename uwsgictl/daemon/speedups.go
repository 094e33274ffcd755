package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/templates"
)

// buildSpeedups compiles the worker's C accelerator (templates/csrc/speedups.c)
// once, into dir/speedups-HASH/, and returns that directory; "" when it
// cannot be built here, in which case workers use their pure-Python
// parser (correct, slower). It is an abi3 extension, so one build serves
// every Python from 3.8 on; it needs a C compiler and Python's headers
// (Debian: gcc, python3-dev).
func buildSpeedups(dir, python string, logf func(string, ...any)) string {
	sum := sha256.Sum256([]byte(templates.SpeedupsC))
	out := filepath.Join(dir, "speedups-"+hex.EncodeToString(sum[:6]))
	so := filepath.Join(out, "_pyvhost_speedups.abi3.so")
	if _, err := os.Stat(so); err == nil {
		logf("C speedups in %s", out)
		return out
	}
	if err := compileSpeedups(out, so, python); err != nil {
		logf("C speedups not built (%v): workers use the pure-Python request parser, which is slower; install gcc and python3-dev to build them", err)
		return ""
	}
	logf("C speedups built in %s", out)
	return out
}

func compileSpeedups(out, so, python string) error {
	cc, err := exec.LookPath("cc")
	if err != nil {
		if cc, err = exec.LookPath("gcc"); err != nil {
			return fmt.Errorf("no C compiler")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inc, err := exec.CommandContext(ctx, python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])").Output()
	if err != nil {
		return fmt.Errorf("ask %s for its include dir: %w", python, err)
	}
	include := strings.TrimSpace(string(inc))
	if _, err := os.Stat(filepath.Join(include, "Python.h")); err != nil {
		return fmt.Errorf("no Python.h in %s", include)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	_ = os.Chmod(out, 0o755)
	src := filepath.Join(out, "speedups.c")
	if err := os.WriteFile(src, []byte(templates.SpeedupsC), 0o644); err != nil {
		return err
	}
	tmp := so + ".tmp"
	cmd := exec.CommandContext(ctx, cc, "-shared", "-fPIC", "-O2", "-I"+include, src, "-o", tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", cc, err, strings.TrimSpace(string(b)))
	}
	_ = os.Chmod(tmp, 0o644)
	return os.Rename(tmp, so)
}
