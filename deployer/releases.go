package deployer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
	"github.com/pyvhost/pyvhost/uwsgictl/appconf"
)

// KeepReleases is how many releases of a site are kept.
const KeepReleases = 10

// Release is one deployed state of a site: its spec, the exact bytes of
// the file pyvhost owns for it, to roll back to, and its apps' own
// settings then.
type Release struct {
	N      int                `json:"n"`
	Time   time.Time          `json:"time"`
	Spec   nginxconf.SiteSpec `json:"spec"`
	File   string             `json:"file"`
	Config []byte             `json:"config"`
	Apps   []ReleaseApp       `json:"apps,omitempty"`
}

// ReleaseApp is what a release keeps of one app's own settings: its pool,
// release commands and smoke paths — never its environment, whose values
// are secrets and stay in STATE/apps alone.
type ReleaseApp struct {
	Mount      string       `json:"mount"`
	Pool       appconf.Pool `json:"pool,omitzero"`
	Release    []string     `json:"release,omitempty"`
	SmokePaths []string     `json:"smoke_paths,omitempty"`
	Interface  string       `json:"interface,omitempty"`
}

// releaseApps is what the apps of spec have stored now.
func releaseApps(stateDir string, spec nginxconf.SiteSpec) ([]ReleaseApp, error) {
	var out []ReleaseApp
	for _, a := range spec.Apps {
		s, err := appconf.Load(stateDir, KeyOf(a))
		if err != nil {
			return nil, err
		}
		out = append(out, ReleaseApp{Mount: a.Mount, Pool: s.Pool, Release: s.Release, SmokePaths: s.SmokePaths, Interface: s.Interface})
	}
	return out, nil
}

func releaseDir(stateDir, domain string) string {
	return filepath.Join(stateDir, "releases", nginxconf.FileStem(domain))
}

// RecordRelease stores a release as the next number and keeps the last
// KeepReleases.
func RecordRelease(stateDir string, r Release) (Release, error) {
	return recordRelease(stateDir, r, nil)
}

// recordRelease is RecordRelease within a change's transaction (tx, when
// not nil): the release file (and a new release dir) is journalled before
// it is written, so a change killed before its commit loses its release
// with its nginx files, and the newest release stays what nginx has.
func recordRelease(stateDir string, r Release, tx *Transaction) (Release, error) {
	dir := releaseDir(stateDir, r.Spec.Domain)
	if _, err := os.Stat(dir); err != nil && tx != nil {
		if err := tx.Track(dir, true); err != nil {
			return r, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, fmt.Errorf("releases: %w", err)
	}
	if stale, _ := filepath.Glob(filepath.Join(dir, ".*.pyvhost-*")); len(stale) > 0 {
		for _, p := range stale { // a release write killed half-way (we hold the deploy lock)
			_ = os.Remove(p)
		}
	}
	all, err := Releases(stateDir, r.Spec.Domain)
	if err != nil {
		return r, err
	}
	r.N = 1
	if len(all) > 0 {
		r.N = all[len(all)-1].N + 1
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	file := filepath.Join(dir, fmt.Sprintf("%06d.json", r.N))
	if tx != nil {
		if err := tx.Track(file, false); err != nil {
			return r, err
		}
	}
	if err := writeJSONAtomic(file, r); err != nil {
		if len(all) == 0 {
			_ = os.Remove(dir) // made just now: no empty release dir is left
		}
		return r, fmt.Errorf("record release: %w", err)
	}
	all = append(all, r)
	for len(all) > KeepReleases {
		_ = os.Remove(filepath.Join(dir, fmt.Sprintf("%06d.json", all[0].N)))
		all = all[1:]
	}
	return r, nil
}

// Releases lists a site's releases, oldest first.
func Releases(stateDir, domain string) ([]Release, error) {
	matches, err := filepath.Glob(filepath.Join(releaseDir(stateDir, domain), "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	var out []Release
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", m, err)
		}
		var r Release
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("release %s is damaged: %w", m, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// recordChange records the site's file as a change leaves it (a deploy,
// rollback or undeploy of one mount). The first time pyvhost records a
// site, the file it replaced goes first, so rollback can return to it.
func recordChange(stateDir string, sc *nginxconf.SiteChanges, tx *Transaction) error {
	for _, c := range sc.Changes {
		if c.Path != sc.SitePath || (c.Kind != nginxconf.Create && c.Kind != nginxconf.Modify) {
			continue
		}
		all, err := Releases(stateDir, sc.Spec.Domain)
		if err != nil {
			return err
		}
		if len(all) == 0 && c.Kind == nginxconf.Modify {
			if err := recordConfig(stateDir, c.Path, c.Old, false, tx); err != nil {
				return err
			}
		}
		return recordConfig(stateDir, c.Path, c.New, true, tx)
	}
	return nil
}

// recordSettings records a release of a site whose file stays as it is
// but whose apps' settings changed, so a rollback can return to them.
func recordSettings(stateDir string, sc *nginxconf.SiteChanges, tx *Transaction) error {
	config, err := os.ReadFile(sc.SitePath)
	if err != nil {
		return fmt.Errorf("record the release: %w", err)
	}
	return recordConfig(stateDir, sc.SitePath, config, true, tx)
}

// recordConfig records one version of a site's file, its spec read back
// from the bytes, with its apps' settings as stored now when withApps (the
// version the change leaves).
func recordConfig(stateDir, path string, config []byte, withApps bool, tx *Transaction) error {
	spec, err := nginxconf.SpecFromFile(path, config)
	if err != nil {
		return err
	}
	spec.Normalize()
	r := Release{Spec: spec, File: path, Config: config}
	if withApps {
		if r.Apps, err = releaseApps(stateDir, spec); err != nil {
			return err
		}
	}
	_, err = recordRelease(stateDir, r, tx)
	return err
}
