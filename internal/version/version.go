// Package version names the build: the version a release sets with
// -ldflags "-X github.com/seedfleet/seedfleet/internal/version.version=v1.2.3",
// otherwise the module version Go recorded (a `go install …@v1.2.3` build),
// otherwise the VCS revision of a source build, otherwise "dev". The seed's
// libp2p user agent, /status and `seedfleet version` all read it here.
package version

import (
	"runtime/debug"
	"sync"
)

// version is set at link time by release builds; empty otherwise.
var version string

var (
	once     sync.Once
	resolved string
)

// String is the build's version, e.g. "v0.4.0", "devel+3f2a1c9d0b1e" or "dev".
func String() string {
	once.Do(func() { resolved = resolve(version, readBuildInfo()) })
	return resolved
}

// UserAgent is what the seed and devices announce in libp2p identify.
func UserAgent() string { return "seedfleet/" + String() }

func readBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

// resolve picks the version from the link-time value, then the build info.
func resolve(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return "devel+" + rev + dirty
	}
	return "dev"
}
