package client

import (
	"errors"
	"strings"
	"testing"
)

// TestResolveVault: "agent", "agent/PROJECT" and namespace IDs, and a
// sentinel for each way a name can be wrong.
func TestResolveVault(t *testing.T) {
	h := openHome(t)
	if _, err := h.ResolveVault("agent"); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("agent of a home without one: %v", err)
	}
	a, err := h.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.CreateProject("work")
	if err != nil {
		t.Fatal(err)
	}
	other, err := openHome(t).CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want error
	}{
		{"agent", nil}, {"agent/work", nil}, {a.Namespace.String(), nil}, {p.Namespace.String(), nil},
		{"agent/play", ErrNoProject}, {"agents", ErrBadVaultName}, {"", ErrBadVaultName},
		{strings.ToUpper(other.String()[:10]), ErrBadVaultName}, {other.String(), ErrUnknownVault},
	} {
		ns, err := h.ResolveVault(c.name)
		if !errors.Is(err, c.want) {
			t.Errorf("ResolveVault(%q): %v, want %v", c.name, err, c.want)
		}
		if err == nil && ns != a.Namespace && ns != p.Namespace {
			t.Errorf("ResolveVault(%q) = %s", c.name, ns)
		}
	}
	if ns, _ := h.ResolveVault("agent/work"); ns != p.Namespace {
		t.Errorf("agent/work is %s, not the project's %s", ns, p.Namespace)
	}
}
