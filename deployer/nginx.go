package deployer

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/nginxconf/nginxproc"
)

// Nginx runs the nginx binary against one configuration.
type Nginx struct {
	Runner Runner
	Bin    string // the nginx binary
	Conf   string // its main configuration file
	Prefix string // -p, when nginx runs with a private prefix; "" for the system's
	// PidFile is where nginx keeps its master's pid (nginxconf.PidFile):
	// Reload waits on the master's workers. "" waits on nothing.
	PidFile string
	// Memo is the file where what `nginx -t` said is remembered (see
	// testmemo.go); "" remembers nothing.
	Memo string

	parsedOnce sync.Once
	parsed     *nginxconf.ParseCache // this process's loads share their parsed files
}

// Load reads nginx's configuration. Loads after the first parse only the
// files that changed: a change loads the tree before it writes and again
// after, and at 10,000 sites a whole parse is a second of CPU.
func (n *Nginx) Load() (*nginxconf.Tree, error) {
	n.parsedOnce.Do(func() { n.parsed = nginxconf.NewParseCache() })
	return n.parsed.Load(n.Conf)
}

// reloadSettle bounds the wait for nginx's workers from before a reload to
// stop accepting: it takes milliseconds; past this the master did not
// apply the config.
const reloadSettle = 10 * time.Second

func (n *Nginx) args(extra ...string) []string {
	var a []string
	if n.Prefix != "" {
		a = append(a, "-p", n.Prefix)
	}
	return append(append(a, "-c", n.Conf), extra...)
}

var nginxMessage = regexp.MustCompile(`\[(emerg|alert|crit|error|warn)\]\s+(?:\d+#\d+: )?(.*)`)

// TestResult is what `nginx -t` said.
type TestResult struct {
	OK       bool
	Errors   []string      // [emerg]/[alert]/[crit]/[error] messages
	Warnings []string      // [warn] messages, e.g. "conflicting server name …, ignored"
	Took     time.Duration // how long nginx took (a slow test runs beside the reload)
}

// Test runs `nginx -t` and sorts its messages.
func (n *Nginx) Test(ctx context.Context) (TestResult, error) {
	start := time.Now()
	_, stderr, err := n.Runner.Run(ctx, n.Bin, n.args("-t")...)
	r := TestResult{OK: err == nil, Took: time.Since(start)}
	for _, line := range strings.Split(string(stderr), "\n") {
		m := nginxMessage.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] == "warn" {
			r.Warnings = append(r.Warnings, m[2])
		} else {
			r.Errors = append(r.Errors, m[2])
		}
	}
	if !r.OK && len(r.Errors) == 0 {
		return r, fmt.Errorf("nginx -t: %v: %s", err, strings.TrimSpace(string(stderr)))
	}
	return r, nil
}

// NewWarnings are the warnings in after that were not in before: a change
// that adds one (nginx ignoring a server_name, say) is a failed change even
// though `nginx -t` passes. A hash nginx could not size optimally is not
// one of them (see Tuning).
func NewWarnings(before, after TestResult) []string {
	seen := map[string]int{}
	for _, w := range before.Warnings {
		seen[w]++
	}
	var out []string
	for _, w := range after.Warnings {
		if seen[w] > 0 {
			seen[w]--
			continue
		}
		if !tuningWarning.MatchString(w) {
			out = append(out, w)
		}
	}
	return out
}

// tuningWarning is nginx saying a hash of names (server names past a few
// hundred sites with aliases, say) is not built as tightly as it wants: it
// still builds one and finds every name, a little slower. A deploy that
// crosses that line must not fail — every later one would too — but the
// operator is told the setting that fixes it.
var tuningWarning = regexp.MustCompile(`^could not build optimal (\w+), you should increase either (.*)`)

// Tuning is what after's hash warnings ask of the operator, one line each.
// For the server names' hash, names is how many the config has: nginx
// builds it without complaint with buckets of 128 bytes and a size of at
// least twice the names (measured with 800 and 10,000 names); the advice
// leaves room for as many again.
func Tuning(after TestResult, names int) []string {
	var out []string
	for _, w := range after.Warnings {
		m := tuningWarning.FindStringSubmatch(w)
		if m == nil {
			continue
		}
		set := fmt.Sprintf("%q", m[2])
		if m[1] == "server_names_hash" {
			set = fmt.Sprintf(`"server_names_hash_bucket_size 128;" and "server_names_hash_max_size %d;"`, nextPow2(4*max(names, 1)))
		}
		out = append(out, fmt.Sprintf("nginx could not build an optimal %s (names are still found, a little slower): set %s in the http block of nginx's config", m[1], set))
	}
	return out
}

// countServerNames is the server names of every block but the site's own,
// and the site's as this deploy leaves them.
func countServerNames(tree *nginxconf.Tree, spec nginxconf.SiteSpec) int {
	own := map[string]bool{spec.Domain: true}
	n := 1 + len(spec.Aliases)
	for _, a := range spec.Aliases {
		own[a] = true
	}
	for _, s := range tree.Servers() {
		for _, name := range s.ServerNames {
			if !own[name] {
				n++
			}
		}
	}
	return n
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Reload asks the running nginx to load the configuration: systemctl when
// nginx is an active systemd unit, else `nginx -s reload`, else, if nginx
// is not running, it is started.
//
// It returns once every new connection sees the new config: nginx's
// workers from before the reload have stopped accepting (package
// nginxproc says why that is needed and how it is seen).
func (n *Nginx) Reload(ctx context.Context) error {
	master := 0
	var old []int
	if n.PidFile != "" {
		if master = nginxproc.MasterPID(n.PidFile); master > 0 {
			old = nginxproc.AcceptingWorkers(master)
		}
	}
	// A master with workers is signalled directly, as `nginx -s reload` and
	// systemd's ExecReload would — but they parse the whole configuration
	// first, only to find the pid file: 2.5 s of a deploy at 10,000 sites.
	if len(old) == 0 || syscall.Kill(master, syscall.SIGHUP) != nil {
		if err := n.signalReload(ctx, n.PidFile != "" && master == 0); err != nil {
			return err
		}
	}
	if len(old) == 0 {
		return nil
	}
	if err := nginxproc.WaitOldWorkers(ctx, master, old, reloadSettle); err != nil {
		return fmt.Errorf("reload nginx: %w", err)
	}
	return nil
}

// up reports whether nginx's master runs; true when its pid file is not
// known (nothing says it does not).
func (n *Nginx) up() bool {
	return n.PidFile == "" || nginxproc.MasterPID(n.PidFile) > 0
}

// signalReload asks nginx to reload, or starts it when it is not running
// (down: its pid file names no live master — a master that died may still
// be named there, and as a zombie it takes -s reload's signal and does
// nothing).
func (n *Nginx) signalReload(ctx context.Context, down bool) error {
	if n.Prefix == "" {
		if _, _, err := n.Runner.Run(ctx, "systemctl", "is-active", "--quiet", "nginx"); err == nil {
			if _, stderr, err := n.Runner.Run(ctx, "systemctl", "reload", "nginx"); err != nil {
				return fmt.Errorf("reload nginx: systemctl reload nginx: %v: %s", err, strings.TrimSpace(string(stderr)))
			}
			return nil
		}
	}
	if down {
		return n.start(ctx)
	}
	if _, stderr, err := n.Runner.Run(ctx, n.Bin, n.args("-s", "reload")...); err != nil {
		if !strings.Contains(string(stderr), "invalid PID") && !strings.Contains(string(stderr), "No such file") &&
			!strings.Contains(string(stderr), "No such process") {
			return fmt.Errorf("reload nginx: %v: %s", err, strings.TrimSpace(string(stderr)))
		}
		return n.start(ctx) // not running
	}
	return nil
}

// start starts nginx and waits until its master runs.
func (n *Nginx) start(ctx context.Context) error {
	if _, stderr, err := n.Runner.Run(ctx, n.Bin, n.args()...); err != nil {
		return fmt.Errorf("start nginx: %v: %s", err, strings.TrimSpace(string(stderr)))
	}
	return n.waitStarted(ctx)
}

// waitStarted waits until a started nginx's master has written its pid
// file: the command that starts it returns when it has forked into the
// background, before that.
func (n *Nginx) waitStarted(ctx context.Context) error {
	if n.PidFile == "" {
		return nil
	}
	deadline := time.Now().Add(reloadSettle)
	for nginxproc.MasterPID(n.PidFile) == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("start nginx: no master process in %s %s after it started (see its error log)", n.PidFile, reloadSettle)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
