// Package pool runs one WSGI app's Python processes for the daemon: a
// zygote that imports the app once, and workers forked from it on demand
// that accept connections themselves.
package pool

import (
	"crypto/sha256"
	"encoding/hex"
)

// Key is an app's identity: the virtualenv, the directory and the entry
// point nginx names with UWSGI_PYHOME, UWSGI_CHDIR and UWSGI_SCRIPT. Not
// the Host header: www. and port variants share one app, and one app never
// serves another's requests.
type Key struct {
	Pyhome string `json:"pyhome"`
	Chdir  string `json:"chdir"`
	Script string `json:"script"` // module[:callable]
}

// ID is a short stable identifier for the key, used in logs and names.
func (k Key) ID() string {
	h := sha256.Sum256([]byte(k.Pyhome + "\x00" + k.Chdir + "\x00" + k.Script))
	return hex.EncodeToString(h[:4])
}

// String is the key as people read it.
func (k Key) String() string {
	s := k.Chdir + ":" + k.Script
	if k.Pyhome != "" {
		s += " (venv " + k.Pyhome + ")"
	}
	return s
}
