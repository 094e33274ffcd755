// Command pyvhost deploys Python web apps behind nginx and serves them.
package main

import (
	"os"
	"runtime/debug"
)

func main() {
	// A command lives for a second or two and most of what it allocates
	// is the parsed nginx config, live until it exits: a collector set for
	// a long-running program spent a tenth of a deploy at 10,000 sites
	// marking it. The daemon sets its own (pyvhost uwsgi, after start-up);
	// GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
