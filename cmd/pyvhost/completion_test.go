package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

// TestCompletionInBash: the script pyvhost completion bash prints, sourced
// by a real bash, completes commands, subcommands and flags from pyvhost's
// own answer.
func TestCompletionInBash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pyvhost, runs bash")
	}
	bin := daemontest.Binary(t)
	tests := []struct{ words, want string }{
		{"pyvhost ct", "ctl"},
		{"pyvhost ctl st", "status stop"},
		{"pyvhost deploy --app", "--app-dir --app-sockets --app-logs"},
		{"pyvhost ctl --ctl /s ap", "apps"},
		{"pyvhost completion ", ""},
	}
	for _, tc := range tests {
		script := `source <(pyvhost completion bash)
COMP_WORDS=(` + tc.words + `)
[[ "` + tc.words + `" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_pyvhost
echo "${COMPREPLY[*]}"`
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = []string{"PATH=" + filepath.Dir(bin) + ":/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("completing %q: %q (%v), want %q", tc.words, got, err, tc.want)
		}
	}
}

// TestCompletionScriptsAndManPage: zsh's script wraps bash's, fish's is
// cli's own; the man page is roff that man renders, naming every command.
func TestCompletionScriptsAndManPage(t *testing.T) {
	for shell, want := range map[string]string{"zsh": "#compdef pyvhost", "fish": "complete -c pyvhost", "bash": "complete -o default -F _pyvhost pyvhost"} {
		code, out, errOut := pyvhost(t, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d %q %q, want %q in it", shell, code, out, errOut, want)
		}
	}
	if code, _, errOut := pyvhost(t, "completion", "tcsh"); code != 2 || !strings.Contains(errOut, "bash, zsh or fish") {
		t.Errorf("completion tcsh: exit %d %q, want a usage error", code, errOut)
	}
	code, page, _ := pyvhost(t, "man")
	if code != 0 || !strings.HasPrefix(page, ".nh\n.TH pyvhost 1") {
		t.Fatalf("man: exit %d %q", code, page[:min(len(page), 80)])
	}
	if testing.Short() {
		return
	}
	man := exec.Command("man", "-l", "-")
	man.Stdin = strings.NewReader(page)
	man.Env = []string{"PATH=/usr/bin:/bin", "MANWIDTH=100", "LANG=C"} // the C locale: ASCII output
	out, err := man.CombinedOutput()
	if err != nil || strings.Contains(string(out), "troff: ") { // a warning of troff's
		t.Fatalf("man -l: %v\n%s", err, out)
	}
	out = regexp.MustCompile(".\b").ReplaceAll(out, nil) // the bold's overstrikes
	for _, cmd := range []string{"deploy", "undeploy", "rollback", "sites", "certs", "ctl", "completion"} {
		if !strings.Contains(string(out), "\n"+cmd) {
			t.Errorf("the man page does not name %s:\n%s", cmd, out)
		}
	}
}
