package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a one-off command in a deployed app's context (its dir, user, venv and environment)",
		ArgsUsage: "DOMAIN [--mount /PREFIX] -- CMD [ARGS...]",
		Description: "Runs CMD as the daemon runs the app: in the app dir, as the dir's owner, with the venv's\n" +
			"bin first on PATH and the app's environment (pyvhost config). The terminal, if any, is\n" +
			"CMD's; its exit status is pyvhost's.\n\n" +
			"Examples:\n" +
			"   pyvhost run blog.example.com -- python manage.py createsuperuser\n" +
			"   pyvhost run example.com --mount /blog -- python manage.py shell",
		Flags:  []cli.Flag{nginxConfFlag(), stateDirFlag(), mountFlag()},
		Action: runRun,
	}
}

func runRun(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1], args[2:]...)
	}
	if len(args) < 2 {
		return usagef("run needs a DOMAIN and a command, e.g. pyvhost run app.example.com -- python manage.py migrate")
	}
	app, err := deployedApp(c, args[0])
	if err != nil {
		return err
	}
	ac, err := deployer.AppContextOf(stateDir(c), app)
	if err != nil {
		return err
	}
	return execIn(ac, args[1:])
}

// execIn replaces pyvhost with the command, so the terminal and the exit
// status are the command's own. It becomes the app's user itself (groups,
// gid, uid), so the environment — secrets — is never on a command line.
func execIn(ac deployer.AppContext, argv []string) error {
	if err := ac.CheckUser(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	env := ac.Environ()
	if t := os.Getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	bin := ac.Executable(argv[0])
	if err := os.Chdir(ac.Dir); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if ac.UID != os.Geteuid() {
		if err := syscall.Setgroups(ac.Groups); err != nil {
			return fmt.Errorf("run: set groups: %w", err)
		}
		if err := syscall.Setgid(ac.GID); err != nil {
			return fmt.Errorf("run: set gid: %w", err)
		}
		if err := syscall.Setuid(ac.UID); err != nil {
			return fmt.Errorf("run: set uid: %w", err)
		}
	}
	return fmt.Errorf("run %s: %w", argv[0], syscall.Exec(bin, argv, env))
}
