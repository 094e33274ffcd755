package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// confirm asks on the terminal before a change; --yes answers for the
// user. With no terminal to ask on and no --yes, it refuses: a script
// must say it means it.
func confirm(c *cli.Context, question string) error {
	if c.Bool("yes") {
		return nil
	}
	f, ok := c.App.Reader.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usagef("not changing anything without confirmation: pass --yes (there is no terminal to ask on)")
	}
	fmt.Fprintf(c.App.ErrWriter, "%s [y/N] ", question)
	line, _ := bufio.NewReader(f).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("cancelled: nothing was changed")
}
