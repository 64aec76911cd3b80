package node

import (
	"os"
	"time"
)

// fileWatchEvery is how often the seed looks for a change of the files it
// re-reads while it runs: the hosted vaults file and the configuration
// file that lists its fleet's members.
const fileWatchEvery = 2 * time.Second

// watchFile calls reload each time path's modification time differs from
// the last one seen, starting from since (the zero time: at the first
// look), until the node stops. A file replaced through a symbolic link, as
// the kubelet updates a mounted ConfigMap, counts as changed. A failed
// reload keeps what the seed had and is logged once per change.
func (n *Node) watchFile(path, what string, since time.Time, reload func() error) {
	defer n.wg.Done()
	t := time.NewTicker(fileWatchEvery)
	defer t.Stop()
	seen := since
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		mod, err := modTime(path)
		if err != nil {
			if !seen.IsZero() {
				n.log.Warn(what+" not reloaded: its file is unreadable; keeping the previous one", "file", path, "err", err)
			}
			seen = time.Time{}
			continue
		}
		if mod.Equal(seen) {
			continue
		}
		seen = mod
		if err := reload(); err != nil {
			n.log.Warn(what+" not reloaded; keeping the previous one", "file", path, "err", err)
		}
	}
}

func modTime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}
