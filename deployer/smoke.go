package deployer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// SmokeTest requests http://addr/ with Host: host through nginx until it
// answers with a status below 500, or timeout passes. nginx applies a
// reload asynchronously, so the first tries may still see the old config.
func SmokeTest(ctx context.Context, addr, host, path string, timeout time.Duration) (int, error) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
		if err != nil {
			return 0, err
		}
		req.Host = host
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return resp.StatusCode, nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("smoke test: http://%s%s with Host %s answered %s", addr, path, host, last)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
