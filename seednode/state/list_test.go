package state

import "testing"

func TestDocumentOf(t *testing.T) {
	hash := ChangePath("conversations/c1", [32]byte{1})
	for _, c := range []struct {
		path, want string
		ok         bool
	}{
		{SnapshotPath("profile"), "profile", true},
		{hash, "conversations/c1", true},
		{"state/a/~c/b/~c/00", "a/~c/b", false}, // not a name
		{"state/~s", "", false},
		{"catalog/x", "", false},
		{"state/profile", "", false},
	} {
		got, ok := documentOf(c.path)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("documentOf(%q) = %q, %v; want %q, %v", c.path, got, ok, c.want, c.ok)
		}
	}
}
