package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/pool"
)

// fakeBackend answers as a daemon would, from fixed outcomes.
type fakeBackend struct {
	loadErr error
	loaded  []LoadRequest
}

func (f *fakeBackend) Status() Status { return Status{} }
func (f *fakeBackend) Apps() Apps     { return Apps{} }
func (f *fakeBackend) App(app string) (pool.AppStats, error) {
	st, err := f.Reload(app)
	st.ID = app
	return st, err
}
func (f *fakeBackend) Load(r LoadRequest) (pool.AppStats, error) {
	f.loaded = append(f.loaded, r)
	return pool.AppStats{}, f.loadErr
}
func (f *fakeBackend) Reload(app string) (pool.AppStats, error) {
	if app != "a1" {
		return pool.AppStats{}, fmt.Errorf("%w: app %s", ErrNotFound, app)
	}
	return pool.AppStats{}, nil
}
func (f *fakeBackend) ReloadAll() error                       { return nil }
func (f *fakeBackend) Stop(app string) (pool.AppStats, error) { return f.Reload(app) }
func (f *fakeBackend) ReloadConfig() error                    { return errors.New("nginx config unreadable") }
func (f *fakeBackend) Shutdown()                              {}

// TestHandler: each endpoint's status and error mapping.
func TestHandler(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		loadErr                  error
		code                     int
		errHas                   string
	}{
		{"status", "GET", "/v1/status", "", nil, 200, ""},
		{"apps", "GET", "/v1/apps", "", nil, 200, ""},
		{"load", "POST", "/v1/load", `{"pyhome":"/v","chdir":"/a","script":"m"}`, nil, 200, ""},
		{"load bad json", "POST", "/v1/load", `{"pyhome":`, nil, 400, "bad load request"},
		{"load too large", "POST", "/v1/load", `{"script":"` + strings.Repeat("x", 70000) + `"}`, nil, 400, "bad load request"},
		{"load refused", "POST", "/v1/load", `{}`, fmt.Errorf("%w: app not declared", ErrRefused), 403, "refused: app not declared"},
		{"load import failed", "POST", "/v1/load", `{}`, &pool.LoadError{App: "x", Msg: "boom", Traceback: "tb"}, 422, "failed to load"},
		{"load other", "POST", "/v1/load", `{}`, errors.New("no memory"), 500, "no memory"},
		{"one app", "GET", "/v1/apps/a1", "", nil, 200, ""},
		{"one app unknown", "GET", "/v1/apps/zz", "", nil, 404, "app zz"},
		{"reload", "POST", "/v1/apps/a1/reload", "", nil, 200, ""},
		{"reload unknown", "POST", "/v1/apps/zz/reload", "", nil, 404, "app zz"},
		{"stop unknown", "POST", "/v1/apps/zz/stop", "", nil, 404, "app zz"},
		{"reload-config failing", "POST", "/v1/reload-config", "", nil, 500, "unreadable"},
		{"wrong method", "GET", "/v1/load", "", nil, 404, "no endpoint"},
		{"unknown", "GET", "/v2/x", "", nil, 404, "no endpoint GET /v2/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler(&fakeBackend{loadErr: tc.loadErr}, nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.code {
				t.Fatalf("%s %s: %d, want %d: %s", tc.method, tc.path, rec.Code, tc.code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.errHas != "" {
				var e Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.errHas) {
					t.Errorf("error %q (%v), want it to say %q", e.Error, err, tc.errHas)
				}
			}
		})
	}
}

// FuzzLoadRequest: whatever bytes a load request carries, the API answers
// 200 or 400 with JSON, and the backend sees only what decoded.
func FuzzLoadRequest(f *testing.F) {
	for _, s := range []string{`{"pyhome":"/v","chdir":"/a","script":"m"}`, `{`, `null`, `[]`, `{"script":1}`, "\x00", `{"a":{"b":[1,2,{}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &fakeBackend{}
		rec := httptest.NewRecorder()
		Handler(b, nil).ServeHTTP(rec, httptest.NewRequest("POST", "/v1/load", strings.NewReader(string(body))))
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("%q: status %d", body, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: the answer is not JSON: %q", body, rec.Body)
		}
		if (rec.Code == http.StatusOK) != (len(b.loaded) == 1) {
			t.Fatalf("%q: status %d but the backend saw %d loads", body, rec.Code, len(b.loaded))
		}
	})
}
