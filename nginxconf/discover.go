package nginxconf

import (
	"os/exec"
	"path/filepath"
	"regexp"
)

// FallbackConfPath is nginx's usual main file when nothing says otherwise.
const FallbackConfPath = "/etc/nginx/nginx.conf"

var confPathArg = regexp.MustCompile(`--conf-path=(\S+)`)

// DiscoverConfPath returns the main configuration file the installed nginx
// reads: the --conf-path it was built with (nginx -V prints it on stderr),
// else /etc/nginx/nginx.conf.
func DiscoverConfPath() string {
	bin, err := NginxBinary()
	if err != nil {
		return FallbackConfPath
	}
	out, err := exec.Command(bin, "-V").CombinedOutput()
	if err != nil {
		return FallbackConfPath
	}
	if m := confPathArg.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return FallbackConfPath
}

// NginxBinary finds nginx on PATH or in /usr/sbin, where Debian puts it and
// where a non-root PATH often does not look.
func NginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/nginx")
}

var (
	pidPathArg = regexp.MustCompile(`--pid-path=(\S+)`)
	prefixArg  = regexp.MustCompile(`--prefix=(\S+)`)
)

// PidFile is where the nginx binary bin, run on the main file conf with
// -p prefix ("" for its built-in one), writes its master's pid: the main
// file's top-level `pid`, else the --pid-path bin was built with; a
// relative path is taken from the prefix, as nginx does.
func PidFile(bin, conf, prefix string) string {
	var built []byte
	if out, err := exec.Command(bin, "-V").CombinedOutput(); err == nil {
		built = out
	}
	p := ""
	if tree, err := LoadMain(conf); err == nil {
		p = tree.PidFile()
	}
	if m := pidPathArg.FindSubmatch(built); p == "" && m != nil {
		p = string(m[1])
	}
	if p == "" {
		p = "logs/nginx.pid" // nginx's own default
	}
	if filepath.IsAbs(p) {
		return p
	}
	if prefix == "" {
		prefix = "/usr/local/nginx"
		if m := prefixArg.FindSubmatch(built); m != nil {
			prefix = string(m[1])
		}
	}
	return filepath.Join(prefix, p)
}
