package nginxconf

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ParseCache lets the loads of one process share the files they parsed: a
// file that stat says is unchanged is not read or parsed again. A deploy
// loads the tree before it writes and again after (for nginx -t's memo),
// and at 10,000 sites each load parses for a second while one file
// differs. Parsed files are never modified, so two trees may share one.
//
// A file is known by its device, inode, size and change times. Writes
// within one tick of the kernel's clock leave the times as they were, so
// a file changed less than racyWindow before it was read is not kept (git
// calls such index entries racy): it is parsed again next time.
type ParseCache struct {
	mu    sync.Mutex
	files map[string]cachedFile // by the path nginx opens
}

type cachedFile struct {
	id fileID
	f  *File
}

type fileID struct {
	dev, ino           uint64
	size, mtime, ctime int64 // times in nanoseconds
}

// racyWindow is how old a file's last change must be, when it is read,
// for the cache to keep it: far above any clock tick.
var racyWindow = time.Second // a var: tests of files just written shorten it

// NewParseCache is an empty cache.
func NewParseCache() *ParseCache { return &ParseCache{files: map[string]cachedFile{}} }

// Load is Load, reusing the files of earlier loads that have not changed.
func (c *ParseCache) Load(main string) (*Tree, error) { return load(main, false, c) }

// parse is readAndParse through the cache; a nil cache reads every time.
func (c *ParseCache) parse(path string) (*File, error) {
	if c == nil {
		return readAndParse(path)
	}
	readAt := time.Now()
	id, statErr := statID(path)
	if statErr == nil {
		c.mu.Lock()
		e, ok := c.files[path]
		c.mu.Unlock()
		if ok && e.id == id {
			return e.f, nil
		}
	}
	f, err := readAndParse(path)
	if err == nil && statErr == nil && id.settled(readAt) {
		c.mu.Lock()
		c.files[path] = cachedFile{id, f}
		c.mu.Unlock()
	}
	return f, err
}

// settled reports whether the file had not changed for racyWindow when it
// was read at readAt: only then may its parse be kept.
func (id fileID) settled(readAt time.Time) bool {
	return readAt.UnixNano()-max(id.mtime, id.ctime) >= int64(racyWindow)
}

// statID is what stat says of the file nginx opens at path (symlinks
// followed: a link pointed elsewhere is another file).
func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, nil
}
