// Command pyvhost deploys Python web apps behind nginx and serves them.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
