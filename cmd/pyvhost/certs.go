package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/deployer"
	"github.com/urfave/cli/v2"
)

func certsCommand() *cli.Command {
	return &cli.Command{
		Name:  "certs",
		Usage: "every TLS site's certificate: names, issuer, expiry, next renewal, last error",
		Description: "Certificates from --tls auto are renewed by the daemon when a third of their life is left;\n" +
			"`pyvhost certs renew` renews the due ones now (--force: all, or DOMAIN's).\n\n" +
			"Examples:\n" +
			"   pyvhost certs\n" +
			"   pyvhost certs renew blog.example.com --force",
		Flags:  []cli.Flag{nginxConfFlag(), stateDirFlag(), jsonFlag(), wideFlag()},
		Action: runCerts,
		Subcommands: []*cli.Command{{
			Name: "renew", ArgsUsage: "[DOMAIN]", Usage: "renew the --tls auto certificates that are due now (--force: renew them anyway)",
			Flags:  append(withoutFlag(changeFlags(), "force"), &cli.BoolFlag{Name: "force", Usage: "renew even a certificate that is not due"}),
			Action: runCertsRenew,
		}},
	}
}

func runCerts(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("certs takes no arguments (did you mean pyvhost certs renew %s?)", c.Args().First())
	}
	certs, err := deployer.Certs(stateDir(c), confPath(c))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if certs == nil {
			certs = []deployer.CertInfo{}
		}
		return enc.Encode(certs)
	}
	if len(certs) == 0 {
		fmt.Fprintln(c.App.Writer, "no site of pyvhost's serves TLS (deploy one with --tls auto)")
		return nil
	}
	fmt.Fprintln(c.App.Writer, certsTable(newUI(c.App.Writer, c.Bool("no-color")), certs, tableWidth(c)))
	return nil
}

var certsColumns = []string{"DOMAIN", "NAMES", "ISSUER", "EXPIRES", "RENEWAL", "PROBLEM"}

// certsFit: the issuer and the other names give way first; a problem is
// shortened in the middle, never dropped.
var certsFit = map[string]col{"ISSUER": {drop: 3}, "NAMES": {drop: 2}, "RENEWAL": {drop: 1}, "PROBLEM": {path: true}}

// certsTable is certs' table, fitting width (0: any).
func certsTable(u *ui, certs []deployer.CertInfo, width int) string {
	var rows [][]string
	for _, ci := range certs {
		renewal, problem := "brought (renew it yourself)", ci.Error
		if ci.Auto {
			renewal = "auto, from " + day(ci.NextRenewal)
			if ci.RenewalBy == "ca" {
				renewal += " (the CA's choice)"
			}
		}
		if ci.LastError != "" {
			problem = u.err.Render("renewal failed: " + ci.LastError)
		}
		rows = append(rows, []string{ci.Domain, strings.Join(ci.Names, " "), ci.Issuer, day(ci.NotAfter), renewal, orDash(problem)})
	}
	return fitTable(u, colsNamed(certsColumns, certsFit), rows, width)
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func runCertsRenew(c *cli.Context) error {
	if c.NArg() > 1 {
		return usagef("certs renew takes at most one DOMAIN")
	}
	env, err := changeEnv(c)
	if err != nil {
		return err
	}
	lock, err := beginChange(c, env)
	if err != nil {
		return err
	}
	defer lock.Release()
	domain := strings.ToLower(c.Args().First())
	results := deployer.RenewDue(c.Context, env.StateDir, env.Nginx, deployer.RenewScope{Domain: domain, Force: c.Bool("force"), AskCA: true}, time.Now())
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(c.App.ErrWriter, "%s: renewal failed: %v (the old certificate keeps serving)\n", orDash(r.Domain), r.Err)
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s: renewed, nginx reloaded\n", r.Domain)
	}
	switch {
	case failed > 0:
		return fmt.Errorf("%d of %d renewals failed", failed, len(results))
	case len(results) == 0:
		fmt.Fprintln(c.App.Writer, "nothing is due (pass --force to renew anyway)")
	}
	return nil
}

// withoutFlag is flags less the one named name (a command that gives the
// name another meaning).
func withoutFlag(flags []cli.Flag, name string) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		if f.Names()[0] != name {
			out = append(out, f)
		}
	}
	return out
}
