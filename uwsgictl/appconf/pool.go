package appconf

import (
	"fmt"
	"strings"
	"time"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// Pool is one app's own pool settings; a nil field means the daemon's
// flag (-p, -t, -R, --idle, --limit-as). 0 is a value: --harakiri 0 turns
// harakiri off for an app of a daemon run with -t 30.
type Pool struct {
	Processes   *int `json:"processes,omitempty"`    // -p: most workers
	Harakiri    *int `json:"harakiri,omitempty"`     // -t: seconds one request may take; 0 = no limit
	MaxRequests *int `json:"max_requests,omitempty"` // -R: recycle a worker after N requests; 0 = never
	Idle        *int `json:"idle,omitempty"`         // --idle: stop the app after N seconds without requests; 0 = never
	LimitAS     *int `json:"limit_as,omitempty"`     // --limit-as: address space per process, MB; 0 = none
	// --asgi-concurrency: connections one ASGI worker serves at once
	ASGIConcurrency *int `json:"asgi_concurrency,omitempty"`
}

// IsZero reports whether the app sets nothing of its own.
func (p Pool) IsZero() bool {
	return p.Processes == nil && p.Harakiri == nil && p.MaxRequests == nil && p.Idle == nil && p.LimitAS == nil &&
		p.ASGIConcurrency == nil
}

// Merge is p with every field that q sets taken from q.
func (p Pool) Merge(q Pool) Pool {
	pick := func(a, b *int) *int {
		if b != nil {
			return b
		}
		return a
	}
	return Pool{pick(p.Processes, q.Processes), pick(p.Harakiri, q.Harakiri), pick(p.MaxRequests, q.MaxRequests),
		pick(p.Idle, q.Idle), pick(p.LimitAS, q.LimitAS), pick(p.ASGIConcurrency, q.ASGIConcurrency)}
}

// Validate refuses values no pool can run with.
func (p Pool) Validate() error {
	for _, f := range p.fields() {
		if f.v == nil {
			continue
		}
		if *f.v < f.min || *f.v > f.max {
			return fmt.Errorf("--%s %d: want %d to %d (%s)", f.flag, *f.v, f.min, f.max, f.means)
		}
	}
	return nil
}

type poolField struct {
	flag, means string
	v           *int
	min, max    int
}

func (p Pool) fields() []poolField {
	return []poolField{
		{"processes", "most worker processes", p.Processes, 1, 1024},
		{"harakiri", "seconds one request may take, 0 for no limit", p.Harakiri, 0, 86400},
		{"max-requests", "requests before a worker is recycled, 0 for never", p.MaxRequests, 0, 1 << 30},
		{"idle", "seconds without requests before the app stops, 0 for never", p.Idle, 0, 30 * 86400},
		{"limit-as", "MB of address space per process, 0 for no limit", p.LimitAS, 0, 1 << 20},
		{"asgi-concurrency", "connections one ASGI worker serves at once", p.ASGIConcurrency, 1, 100000},
	}
}

// String is the settings the app sets, e.g. "processes=4 harakiri=30s";
// "" when it sets none.
func (p Pool) String() string {
	var out []string
	for _, f := range p.fields() {
		if f.v == nil {
			continue
		}
		unit := ""
		switch f.flag {
		case "harakiri", "idle":
			unit = "s"
		case "limit-as":
			unit = "MB"
		}
		out = append(out, fmt.Sprintf("%s=%d%s", f.flag, *f.v, unit))
	}
	return strings.Join(out, " ")
}

// Apply sets cfg's pool settings from p where p sets them.
func (p Pool) Apply(cfg *pool.Config) {
	secs := func(n int) time.Duration { return time.Duration(n) * time.Second }
	if p.Processes != nil {
		cfg.Processes = *p.Processes
	}
	if p.Harakiri != nil {
		cfg.Harakiri = secs(*p.Harakiri)
	}
	if p.MaxRequests != nil {
		cfg.MaxRequests = *p.MaxRequests
	}
	if p.Idle != nil {
		cfg.Idle = secs(*p.Idle)
	}
	if p.LimitAS != nil {
		cfg.LimitAS = *p.LimitAS
	}
	if p.ASGIConcurrency != nil {
		cfg.ASGIConcurrency = *p.ASGIConcurrency
	}
}
