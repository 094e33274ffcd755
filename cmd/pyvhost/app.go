package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pyvhost/pyvhost/nginxconf"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// run is the whole program; main only exits with its result, so tests can
// call it with their own streams.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.Run(intersperse(app, args))
	if err == nil {
		return 0
	}
	ui := newUI(stderr, os.Getenv("NO_COLOR") != "" || hasFlag(args, "--no-color"))
	fmt.Fprintln(stderr, ui.err.Render("pyvhost: "+oneLine(err.Error())))
	var ue usageError
	var ie *nginxconf.InvalidError
	if errors.As(err, &ue) || errors.As(err, &ie) {
		return 2
	}
	return 1
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "pyvhost",
		Usage:   "deploy Python web apps behind nginx as easily as PHP",
		Version: version,
		Description: "pyvhost reads and writes nginx server blocks that route sites to a uwsgi daemon.\n" +
			"nginx's configuration is the single source of truth: what is deployed is what nginx routes.",
		// One value per flag: a comma is part of an --env value, a release
		// command or a path, never a separator.
		DisableSliceFlagSeparator: true,
		Reader:                    stdin,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-color", Usage: "never colour output (also: NO_COLOR=1)"},
		},
		Commands: []*cli.Command{
			deployCommand(),
			undeployCommand(),
			rollbackCommand(),
			runCommand(),
			configCommand(),
			logsCommand(),
			certsCommand(),
			sitesCommand(),
			renderCommand(),
			diffCommand(),
			uwsgiCommand(),
			ctlCommand(),
			completionCommand(),
			manCommand(),
			unitCommand(),
		},
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		OnUsageError:         onUsageError,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() reports errors
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsageError
		c.HideHelpCommand = true
		for _, sub := range c.Subcommands {
			sub.OnUsageError = onUsageError
			sub.HideHelpCommand = true
		}
	}
	return app
}

// onUsageError turns urfave/cli's usage errors (unknown flag, bad value)
// into our one-line usage error instead of a help dump.
func onUsageError(c *cli.Context, err error, _ bool) error {
	name := "pyvhost"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return usagef("%v (see %s --help)", err, name)
}

// hasFlag reports whether a boolean flag appears before a "--".
func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == flag {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
