package nginxconf

import (
	"os/exec"
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
