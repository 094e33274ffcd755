package nginxconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/nginxconf/nginxtest"
)

// TestLoadsWhatNginxLoads compares the files Load reads with the files a
// real nginx reads (`nginx -T` names each one), for this machine's own
// configuration and for the corpus trees nginx accepts: include globs,
// relative paths, dot-files and suffix filters must agree exactly.
func TestLoadsWhatNginxLoads(t *testing.T) {
	confs := []string{}
	if _, err := os.Stat("/etc/nginx/nginx.conf"); err == nil {
		confs = append(confs, "/etc/nginx/nginx.conf")
	}
	// Trees without a pid directive of their own (and no stream block: Debian
	// builds it as a separate module), so nginx's pid and logs
	// can be pointed at a temporary directory.
	for _, name := range []string{"nested-globs", "single-file", "inherited", "comments", "crlf", "map-geo-if", "wildcard-regex", "default-listen", "quoted", "managed-mounts"} {
		confs = append(confs, copyTree(t, name))
	}
	for _, conf := range confs {
		t.Run(conf, func(t *testing.T) {
			tmp := t.TempDir()
			args := []string{"-T", "-q", "-c", conf}
			if !strings.HasPrefix(conf, "/etc/") {
				args = append(args, "-p", filepath.Dir(conf), "-g", "pid "+tmp+"/nginx.pid; error_log "+tmp+"/error.log;")
			}
			out, err := exec.Command(nginxtest.Binary(t), args...).CombinedOutput()
			if err != nil {
				t.Fatalf("nginx -T: %v\n%s", err, out)
			}
			var want []string
			for _, l := range strings.Split(string(out), "\n") {
				if p, ok := strings.CutPrefix(l, "# configuration file "); ok {
					want = append(want, strings.TrimSuffix(p, ":"))
				}
			}
			tree, err := Load(conf)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range tree.Files {
				got = append(got, f.Path)
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("files differ:\nLoad:\n  %s\nnginx -T:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}
