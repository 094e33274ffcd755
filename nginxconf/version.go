package nginxconf

import (
	"os/exec"
	"regexp"
	"strconv"
	"sync"
)

var nginxVersion = regexp.MustCompile(`nginx/(\d+)\.(\d+)\.(\d+)`)

var http2Once = sync.OnceValue(func() bool {
	bin, err := NginxBinary()
	if err != nil {
		return false
	}
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	return HasHTTP2Directive(string(out))
})

// HTTP2Directive reports whether the installed nginx takes `http2 on;`
// (1.25.1 and later, where listen's http2 parameter warns, and a warning
// fails a deploy); asked once.
func HTTP2Directive() bool { return http2Once() }

// HasHTTP2Directive reports it for nginx -v's output.
func HasHTTP2Directive(version string) bool {
	m := nginxVersion.FindStringSubmatch(version)
	if m == nil {
		return false
	}
	v := [3]int{}
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v[0] > 1 || v[0] == 1 && (v[1] > 25 || v[1] == 25 && v[2] >= 1)
}
