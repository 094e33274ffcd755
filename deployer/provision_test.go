package deployer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

var (
	venvOnce sync.Once
	venvDir  string
	venvErr  error
)

// sharedVenv is one venv (Debian's python, system site packages) for the
// tests of this package.
func sharedVenv(t *testing.T) string {
	t.Helper()
	venvOnce.Do(func() {
		venvDir, venvErr = os.MkdirTemp("", "pyvhost-deployer-venv-")
		if venvErr == nil {
			_, venvErr = EnsureVenv(context.Background(), ExecRunner{}, "/usr/bin/python3", filepath.Join(venvDir, "venv"), true)
		}
	})
	if venvErr != nil {
		t.Fatalf("venv: %v (make test installs python3-venv)", venvErr)
	}
	return filepath.Join(venvDir, "venv")
}

func TestMain(m *testing.M) {
	// daemontest.Main removes the binary it built for the daemon tests.
	daemontest.Main(m, func() {
		if venvDir != "" {
			os.RemoveAll(venvDir)
		}
	})
}

func TestEnsureVenvCreatesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a venv")
	}
	dir := filepath.Join(t.TempDir(), "venv")
	created, err := EnsureVenv(context.Background(), ExecRunner{}, "/usr/bin/python3", dir, false)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	created, err = EnsureVenv(context.Background(), ExecRunner{}, "/usr/bin/python3", dir, false)
	if err != nil || created {
		t.Fatalf("second: %v %v, want the existing venv kept", created, err)
	}
	if _, err := EnsureVenv(context.Background(), ExecRunner{}, "/nonexistent/python3", filepath.Join(t.TempDir(), "v"), false); err == nil {
		t.Fatal("a missing interpreter created a venv")
	}
}

// TestInstallRequirements: the real pip path, offline: a local package
// (no index), a requirements file without packages, and one that fails.
func TestInstallRequirements(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pip")
	}
	ctx := context.Background()
	venv := filepath.Join(t.TempDir(), "venv")
	if _, err := EnsureVenv(ctx, ExecRunner{}, "/usr/bin/python3", venv, false); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "tinypkg")
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A local wheel, built here with the venv's own pip, then installed
	// from a requirements file with no package index.
	write(filepath.Join(pkg, "pyproject.toml"), "[build-system]\nrequires = []\nbuild-backend = \"tinybackend\"\nbackend-path = [\".\"]\n")
	write(filepath.Join(pkg, "tinybackend.py"), tinyBackend)
	wheels := filepath.Join(dir, "wheels")
	if out, err := exec.Command(VenvPython(venv), "-m", "pip", "wheel", "--no-deps", "--no-index", "-w", wheels, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build the local wheel: %v\n%s", err, out)
	}
	req := filepath.Join(dir, "requirements.txt")
	write(req, "--no-index\n--find-links "+wheels+"\ntinypkg==1.0\n")
	if err := InstallRequirements(ctx, ExecRunner{}, venv, req, filepath.Join(dir, "pip.log")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(VenvPython(venv), "-c", "import tinypkg; print(tinypkg.VERSION)").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "1.0" {
		t.Fatalf("tinypkg not importable in the venv: %v %s", err, out)
	}
	write(req, "# nothing to install\n")
	if err := InstallRequirements(ctx, ExecRunner{}, venv, req, filepath.Join(dir, "pip.log")); err != nil {
		t.Fatalf("a requirements file without packages: %v", err)
	}
	write(req, "--no-index\nno-such-package-pyvhost==9.9\n")
	err := InstallRequirements(ctx, ExecRunner{}, venv, req, filepath.Join(dir, "pip.log"))
	if err == nil || !strings.Contains(err.Error(), "no-such-package-pyvhost") || !strings.Contains(err.Error(), "pip.log") {
		t.Fatalf("failing requirements: %v", err)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "pip.log")); !strings.Contains(string(log), "no-such-package-pyvhost") {
		t.Fatalf("pip's output is not in the log: %s", log)
	}
}

// tinyBackend is a PEP 517 build backend in a few lines, so the test
// builds a real wheel with nothing from the network.
const tinyBackend = `import base64, hashlib, os, zipfile
NAME, VERSION = "tinypkg", "1.0"
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    files = {
        "tinypkg/__init__.py": "VERSION = %r\n" % VERSION,
        "%s-%s.dist-info/METADATA" % (NAME, VERSION): "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (NAME, VERSION),
        "%s-%s.dist-info/WHEEL" % (NAME, VERSION): "Wheel-Version: 1.0\nGenerator: tiny\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, text in files.items():
            data = text.encode()
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
        rec = "%s-%s.dist-info/RECORD" % (NAME, VERSION)
        z.writestr(rec, "\n".join(record + [rec + ",,"]) + "\n")
    return name
def get_requires_for_build_wheel(config_settings=None):
    return []
`

func TestPreflight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python")
	}
	ctx := context.Background()
	py := VenvPython(sharedVenv(t))
	dir := t.TempDir()
	files := map[string]string{
		"good.py":         "def application(environ, start_response):\n    return []\n",
		"named.py":        "def make(environ, start_response):\n    return []\n",
		"syntax.py":       "def application(:\n",
		"nocall.py":       "x = 1\n",
		"notcall.py":      "application = 42\n",
		"raises.py":       "def helper():\n    raise ValueError('at import')\n\nhelper()\n",
		"pkg/__init__.py": "",
		"pkg/wsgi.py":     "application = lambda e, s: []\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The traceback starts at the app's code (first: the file of its
	// first frame; "" for none, the message saying it all): never in the
	// preflight's own script.
	tests := []struct {
		script string
		want   string // "" = imports
		first  string
	}{
		{"good", "", ""},
		{"named:make", "", ""},
		{"pkg.wsgi", "", ""},
		{"syntax", "SyntaxError", ""},
		{"nocall", "no callable 'application' in nocall", ""},
		{"named:missing", "no callable 'missing' in named", ""},
		{"notcall", "is not callable", ""},
		{"absent", "No module named 'absent'", ""},
		{"raises", "ValueError: at import", "raises.py"},
	}
	for _, tc := range tests {
		err := Preflight(ctx, AppContext{Dir: dir, UID: os.Geteuid()}, py, tc.script, "")
		var pe *PreflightError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.script, err)
		case tc.want != "" && (!errors.As(err, &pe) || !strings.Contains(pe.Traceback, tc.want) || !strings.Contains(err.Error(), tc.script)):
			t.Errorf("%s: %v, want a traceback with %q", tc.script, err, tc.want)
		case tc.want != "":
			starts := !strings.HasPrefix(pe.Traceback, "Traceback") // no frames
			if tc.first != "" {
				starts = strings.HasPrefix(pe.Traceback, "Traceback (most recent call last):\n  File \""+filepath.Join(dir, tc.first)+"\"")
			}
			if strings.Contains(pe.Traceback, "<string>") || !starts {
				t.Errorf("%s: the traceback does not start at the app's code:\n%s", tc.script, pe.Traceback)
			}
		}
	}
}
