package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a one-off command in a deployed app's context (its dir, user and venv)",
		ArgsUsage: "DOMAIN [--mount /PREFIX] -- CMD [ARGS...]",
		Description: "Runs CMD as the daemon runs the app: in the app dir, as the dir's owner, with the venv's\n" +
			"bin first on PATH. The terminal, if any, is CMD's; its exit status is pyvhost's.\n\n" +
			"Examples:\n" +
			"   pyvhost run blog.example.com -- python manage.py createsuperuser\n" +
			"   pyvhost run example.com --mount /blog -- python manage.py shell",
		Flags:  []cli.Flag{nginxConfFlag(), &cli.StringFlag{Name: "mount", Value: "/", Usage: "the app at URL `PREFIX` of the site"}},
		Action: runRun,
	}
}

// appContext is where and as whom an app's command runs.
type appContext struct {
	dir, venv string
	uid, gid  int
	home      string
}

func runRun(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1], args[2:]...)
	}
	if len(args) < 2 {
		return usagef("run needs a DOMAIN and a command, e.g. pyvhost run app.example.com -- python manage.py migrate")
	}
	if err := nginxconf.ValidateDomain("domain", args[0]); err != nil {
		return &nginxconf.InvalidError{Err: err}
	}
	tree, err := loadTree(c)
	if err != nil {
		return err
	}
	ctx, err := findAppContext(tree, args[0], nginxconf.NormalizeMount(c.String("mount")))
	if err != nil {
		return err
	}
	return execIn(ctx, args[1:])
}

// findAppContext is the app pyvhost deployed at domain and mount, and the
// user the daemon runs it as: its directory's owner.
func findAppContext(tree *nginxconf.Tree, domain, mount string) (appContext, error) {
	for _, s := range tree.Sites() {
		spec := nginxconf.SpecFromServer(s)
		spec.Normalize()
		if spec.Domain != domain || !s.Managed {
			continue
		}
		for _, a := range spec.Apps {
			if a.Mount != mount {
				continue
			}
			st, err := os.Stat(a.AppDir)
			if err != nil {
				return appContext{}, fmt.Errorf("the app dir of %s%s: %w", domain, mount, err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			ctx := appContext{dir: a.AppDir, venv: a.Venv, uid: int(sys.Uid), gid: int(sys.Gid), home: "/"}
			if u, err := user.LookupId(strconv.Itoa(ctx.uid)); err == nil {
				ctx.home = u.HomeDir
			}
			return ctx, nil
		}
		return appContext{}, &nginxconf.InvalidError{Err: fmt.Errorf("%s has no app at --mount %s (see pyvhost sites)", domain, mount)}
	}
	return appContext{}, &nginxconf.InvalidError{Err: fmt.Errorf("%s is not a site pyvhost deployed (see pyvhost sites)", domain)}
}

// execIn replaces pyvhost with the command, so the terminal and the exit
// status are the command's own: through runuser when it must run as
// another user (root only), else directly.
func execIn(ctx appContext, cmd []string) error {
	env := []string{"PATH=" + filepath.Join(ctx.venv, "bin") + ":/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV=" + ctx.venv,
		"HOME=" + ctx.home, "LANG=C.UTF-8"}
	if t := os.Getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	if err := os.Chdir(ctx.dir); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	argv := append([]string{"env", "-i"}, append(env, cmd...)...)
	if ctx.uid != os.Geteuid() {
		if os.Geteuid() != 0 {
			return fmt.Errorf("run: the app runs as uid %d (its dir's owner): run pyvhost run as root or as that user", ctx.uid)
		}
		name := strconv.Itoa(ctx.uid)
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		argv = append([]string{"runuser", "-u", name, "--"}, argv...)
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return fmt.Errorf("run: %w", syscall.Exec(bin, argv, os.Environ()))
}
