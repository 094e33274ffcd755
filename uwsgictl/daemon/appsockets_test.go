package daemon

import (
	"strconv"
	"testing"
)

// TestSocketList: the log names a few sockets, and counts the rest.
func TestSocketList(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{1, "/s/0.sock"}, {5, "/s/0.sock, /s/1.sock, /s/2.sock, /s/3.sock, /s/4.sock"},
		{10000, "/s/0.sock, /s/1.sock, /s/2.sock, /s/3.sock, /s/4.sock and 9995 more"}} {
		var paths []string
		for i := 0; i < tc.n; i++ {
			paths = append(paths, "/s/"+strconv.Itoa(i)+".sock")
		}
		if got := socketList(paths); got != tc.want {
			t.Errorf("%d sockets: %q, want %q", tc.n, got, tc.want)
		}
	}
}
