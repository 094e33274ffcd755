package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// intersperse puts arguments where urfave/cli v2 looks for them, so that
// flags may come anywhere, as with git or kubectl:
//   - a command's positional arguments after its flags (v2 stops parsing
//     flags at the first argument, but the contract is `pyvhost deploy
//     DOMAIN --app-dir DIR`);
//   - flags given between a command and its subcommand after the
//     subcommand (`pyvhost ctl --ctl S status` is `pyvhost ctl status --ctl S`);
//   - pyvhost's own flags (--no-color) given after the command before it.
func intersperse(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args // completion: the words as typed, the flag last
	}
	global := flagArity(app.Flags)
	i := 1 // the command: past pyvhost's own flags
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	head := append([]string{}, args[:i+1]...)
	rest := args[i+1:]
	for len(cmd.Subcommands) > 0 {
		moved, tail := leadingFlags(rest, subFlagArity(cmd))
		if len(tail) == 0 {
			break
		}
		sub := cmd.Command(tail[0])
		if sub == nil {
			break
		}
		cmd = sub
		head = append(head, tail[0])
		rest = append(moved, tail[1:]...)
	}
	takesValue := flagArity(cmd.Flags)
	if len(cmd.Subcommands) > 0 { // no subcommand given: its flags still read as such
		takesValue = subFlagArity(cmd)
	}
	var flags, positional, own []string
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name := flagName(a)
		if _, mine := takesValue[name]; !mine {
			if _, ok := global[name]; ok {
				own = append(own, a) // pyvhost's own flags are all switches
				continue
			}
		}
		flags = append(flags, a)
		if !strings.Contains(a, "=") && takesValue[name] && j+1 < len(rest) {
			flags = append(flags, rest[j+1])
			j++
		}
	}
	out := append(append([]string{args[0]}, own...), head[1:]...)
	out = append(out, flags...)
	if len(positional) > 0 && positional[0] != "--" {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// leadingFlags splits args into the flags (and their values) before the
// first word that is not one, and the rest.
func leadingFlags(args []string, takesValue map[string]bool) (flags, rest []string) {
	for j := 0; j < len(args); j++ {
		a := args[j]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return flags, args[j:]
		}
		flags = append(flags, a)
		if !strings.Contains(a, "=") && takesValue[flagName(a)] && j+1 < len(args) {
			flags = append(flags, args[j+1])
			j++
		}
	}
	return flags, nil
}

// flagArity maps each flag name to whether it takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// subFlagArity is flagArity over every subcommand of cmd: a flag given
// before the subcommand is known only by name there.
func subFlagArity(cmd *cli.Command) map[string]bool {
	m := flagArity(cmd.Flags)
	for _, s := range cmd.Subcommands {
		for n, v := range flagArity(s.Flags) {
			m[n] = m[n] || v
		}
	}
	return m
}

func flagName(a string) string {
	name := strings.TrimLeft(a, "-")
	if k, _, ok := strings.Cut(name, "="); ok {
		return k
	}
	return name
}
