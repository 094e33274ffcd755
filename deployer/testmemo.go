package deployer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/pyvhost/pyvhost/nginxconf"
)

// A change runs `nginx -t` on the config as it is first: the baseline its
// new warnings are measured against, and a refusal to build on a config
// nginx already rejects. At 10,000 sites that is 2 s of nginx parsing what
// the previous deploy's own `nginx -t` parsed a minute ago. So what each
// `nginx -t` said is remembered (Nginx.Memo, in the state dir) under a
// fingerprint of what nginx read — its binary and every file of the
// configuration, includes followed — and a baseline with a remembered
// fingerprint is not run again for memoFor. Only the new config's test
// (TestNew), which always runs, writes the memo: a change refused before
// it leaves nothing behind. What no fingerprint sees (a certificate
// replaced, a name's DNS) that test still finds. The memo lives in the
// runtime dir, a cache that a reboot clears.

// memoFor is how long a remembered result stands in for a run.
const memoFor = 10 * time.Minute

// memoKeep is how many results the memo keeps (the config before and
// after the last few changes).
const memoKeep = 4

type memoEntry struct {
	Fingerprint string     `json:"fingerprint"`
	At          time.Time  `json:"at"`
	Result      TestResult `json:"result"`
}

// fingerprint is what `nginx -t` of tree depends on that pyvhost sees.
func (n *Nginx) fingerprint(tree *nginxconf.Tree) string {
	h := sha256.New()
	if st, err := os.Stat(n.Bin); err == nil {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", n.Bin, st.Size(), st.ModTime().UnixNano())
	}
	fmt.Fprintf(h, "%s\x00%s\x00", n.Conf, n.Prefix)
	for _, f := range tree.Files {
		sum := sha256.Sum256(f.Source)
		fmt.Fprintf(h, "%s\x00%x\x00", f.Path, sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestTree is `nginx -t` of the config tree was loaded from: what a
// TestNew of the same files said within memoFor, else a run.
func (n *Nginx) TestTree(ctx context.Context, tree *nginxconf.Tree) (TestResult, error) {
	if r, ok := n.recall(n.fingerprint(tree)); ok {
		return r, nil
	}
	return n.Test(ctx)
}

// TestNew is `nginx -t` of a config just written, remembered for the next
// change's baseline once it passed: the files are read meanwhile, on the
// other CPU.
func (n *Nginx) TestNew(ctx context.Context) (TestResult, error) {
	if n.Memo == "" {
		return n.Test(ctx)
	}
	loaded := make(chan *nginxconf.Tree, 1)
	go func() {
		tree, err := n.Load()
		if err != nil {
			tree = nil
		}
		loaded <- tree
	}()
	r, err := n.Test(ctx)
	if tree := <-loaded; tree != nil && err == nil && r.OK {
		n.remember(n.fingerprint(tree), r)
	}
	return r, err
}

func (n *Nginx) recall(fp string) (TestResult, bool) {
	for _, e := range n.memo() {
		if e.Fingerprint == fp && time.Since(e.At) < memoFor && !e.At.After(time.Now()) {
			return e.Result, true
		}
	}
	return TestResult{}, false
}

// remember adds a result, keeping the newest memoKeep. A memo that cannot
// be written only costs the next change a run of `nginx -t`.
func (n *Nginx) remember(fp string, r TestResult) {
	if n.Memo == "" {
		return
	}
	entries := []memoEntry{{Fingerprint: fp, At: time.Now(), Result: r}}
	for _, e := range n.memo() {
		if e.Fingerprint != fp && len(entries) < memoKeep {
			entries = append(entries, e)
		}
	}
	if b, err := json.Marshal(entries); err == nil {
		_ = writeFileAtomic(n.Memo, b, 0o600)
	}
}

func (n *Nginx) memo() []memoEntry {
	if n.Memo == "" {
		return nil
	}
	b, err := os.ReadFile(n.Memo)
	if err != nil {
		return nil
	}
	var entries []memoEntry
	if json.Unmarshal(b, &entries) != nil {
		return nil
	}
	return entries
}
