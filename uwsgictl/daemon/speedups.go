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
	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// buildSpeedups makes the worker's C request path (templates/csrc/)
// ready in dir/speedups-HASH/ and returns that directory: the module built
// there before, else the one embedded in this binary at build time (make
// build: a host needs no compiler), else compiled now; "" when none can be
// had, in which case workers run their pure-Python request path (correct,
// slower). It is an abi3 extension, so one build serves every Python from
// 3.8 on; compiling needs a C compiler and Python's headers (Debian: gcc,
// python3-dev).
func buildSpeedups(dir, python string, logf func(string, ...any)) string {
	hash := SpeedupsHash()
	out := filepath.Join(dir, "speedups-"+hash)
	so := filepath.Join(out, "_pyvhost_speedups.abi3.so")
	if _, err := os.Stat(so); err == nil {
		logf("C speedups in %s", out)
		return out
	}
	if mod := templates.PrebuiltSpeedups(hash); mod != nil {
		err := installSpeedups(out, so, func(tmp string) error { return os.WriteFile(tmp, mod, 0o644) })
		if err == nil {
			logf("C speedups: this binary's prebuilt module, written to %s", out)
			return out
		}
		logf("C speedups: the prebuilt module could not be written (%v); compiling", err)
	}
	if err := installSpeedups(out, so, func(tmp string) error { return CompileSpeedups(tmp, python) }); err != nil {
		logf("C speedups not built (%v): workers use the pure-Python request parser, which is slower; install gcc and python3-dev to build them", err)
		return ""
	}
	logf("C speedups built in %s", out)
	return out
}

// SpeedupsHash names the C sources and protocol header this binary holds:
// a module is used only by a binary of the same hash.
func SpeedupsHash() string {
	h := sha256.New()
	for _, f := range speedupsSources() {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// installSpeedups makes so (in out) with make, which writes a temporary
// file: daemons starting at once may do this at once, each in a directory
// of its own, the result renamed into place (the same bytes either way).
func installSpeedups(out, so string, make func(tmp string) error) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	_ = os.Chmod(out, 0o755)
	build, err := os.MkdirTemp(out, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(build)
	tmp := filepath.Join(build, filepath.Base(so))
	if err := make(tmp); err != nil {
		return err
	}
	_ = os.Chmod(tmp, 0o644)
	return os.Rename(tmp, so)
}

// CompileSpeedups compiles the embedded C sources into the module so,
// against python's headers (make build's cmd/speedups calls it too).
func CompileSpeedups(so, python string) error {
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
	src, err := os.MkdirTemp("", "pyvhost-speedups-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	main, err := writeSources(src, speedupsSources())
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, cc, "-shared", "-fPIC", "-O2", "-I"+include, main, "-o", so)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", cc, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// speedupsSources are the embedded C files and protocol.h, the protocol's
// numbers from the same binary (pool.CHeader), so C cannot disagree with Go.
func speedupsSources() []templates.SourceFile {
	return append(templates.SpeedupsSources(), templates.SourceFile{Name: "protocol.h", Data: pool.CHeader()})
}

// writeSources writes the C files into dir and returns the path of
// speedups.c, the one to compile.
func writeSources(dir string, files []templates.SourceFile) (string, error) {
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "speedups.c"), nil
}
