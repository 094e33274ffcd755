// Command speedups compiles the worker's C module for make build to embed:
//
//	go run ./cmd/speedups templates/prebuilt
//
// writes templates/prebuilt/speedups-HASH-GOOS-GOARCH.so (HASH: of the C
// sources and protocol header, as the daemon computes it) unless it is
// there, and removes modules of other sources. The binary built next
// embeds it, so the daemon writes it out instead of compiling on hosts
// without a compiler. Without a compiler or Python's headers it says so
// and exits 1: the binary then compiles at start-up where it can.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/pyvhost/pyvhost/templates"
	"github.com/pyvhost/pyvhost/uwsgictl/daemon"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./cmd/speedups DIR (templates/prebuilt)")
		os.Exit(2)
	}
	if err := run(os.Args[1], pythonForHeaders()); err != nil {
		fmt.Fprintf(os.Stderr, "speedups: %v\n", err)
		os.Exit(1)
	}
}

// pythonForHeaders is the interpreter whose headers the module is built
// against: the limited API of 3.8 makes one build serve every CPython 3.8+.
func pythonForHeaders() string {
	if p := os.Getenv("PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

func run(dir, python string) error {
	name := templates.PrebuiltName(daemon.SpeedupsHash(), runtime.GOOS, runtime.GOARCH)
	so := filepath.Join(dir, name)
	if _, err := os.Stat(so); err == nil {
		return nil
	}
	tmp := fmt.Sprintf("%s.%d.tmp", so, os.Getpid()) // builds at once (two test packages) each write their own
	if err := daemon.CompileSpeedups(tmp, python); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, so); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "speedups-*.so"))
	for _, f := range old {
		if f != so {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	fmt.Printf("speedups: %s\n", so)
	return nil
}
