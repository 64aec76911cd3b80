package client

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Project vaults are plain namespaces bound to the agent: each holds a copy
// of the agent document (with its own namespace's signature), its own
// content keys and envelopes. The agent's catalog lists them: private
// entries of the agent vault under catalogDir, sealed like every value, so a
// device that can read the agent vault discovers the projects and syncs them,
// and a seed learns nothing of their names.
const catalogDir = "catalog/"

// Project is one catalog entry.
type Project struct {
	Name      string            `json:"name"`
	Namespace vault.NamespaceID `json:"-"`
	NS        string            `json:"namespace"`
	Created   time.Time         `json:"created"`
}

// privateVault is a vault bound to the agent, with the namespace key when
// this device holds it (the root device, which re-signs the document into it).
type privateVault struct {
	ns    vault.NamespaceID
	nsKey ed25519.PrivateKey
}

// privateVaults returns the agent vault and every project vault (root device
// only: it needs their namespace keys).
func (h *Home) privateVaults(a *AgentInfo) ([]privateVault, error) {
	nsKey, err := AgentNamespaceKey(a.Root)
	if err != nil {
		return nil, err
	}
	out := []privateVault{{a.Namespace, nsKey}}
	projects, err := h.Projects()
	if err != nil {
		return nil, err
	}
	for _, p := range projects {
		key, err := identity.Load(h.vaultKeyPath(p.Namespace))
		if err != nil {
			return nil, fmt.Errorf("project %q: its namespace key is not on this device (%w): approve and revoke on the device that created the agent", p.Name, err)
		}
		out = append(out, privateVault{p.Namespace, key})
	}
	return out, nil
}

// CreateProject makes a project vault bound to the agent, with its own
// content key sealed to every device, and lists it in the catalog. Root
// device only.
func (h *Home) CreateProject(name string) (Project, error) {
	if err := identity.CheckFragment(name); err != nil {
		return Project{}, fmt.Errorf("project name: %w", err)
	}
	doc, a, err := h.AgentDocument()
	if err != nil {
		return Project{}, err
	}
	if a.Root == nil {
		return Project{}, ErrNotRootDevice
	}
	if _, err := h.Project(name); err == nil {
		return Project{}, fmt.Errorf("project %q already exists", name)
	}
	ns, err := h.CreateVault()
	if err != nil {
		return Project{}, err
	}
	nsKey, err := identity.Load(h.vaultKeyPath(ns))
	if err != nil {
		return Project{}, err
	}
	names, err := sealed.NewNameKey()
	if err != nil {
		return Project{}, err
	}
	content, err := sealed.NewContentKey()
	if err != nil {
		return Project{}, err
	}
	if err := h.writeDocInto(a, nsKey, doc); err != nil {
		return Project{}, err
	}
	if err := h.writeEnvelopes(a, ns, doc, []sealed.EnvelopePayload{{Epoch: 1, Content: content, Names: names}}); err != nil {
		return Project{}, err
	}
	p := Project{Name: name, Namespace: ns, NS: ns.String(), Created: time.Now().UTC().Truncate(time.Second)}
	raw, err := json.Marshal(p)
	if err != nil {
		return Project{}, err
	}
	if _, err := h.PutPrivate(a.Namespace, catalogDir+name, raw); err != nil {
		return Project{}, err
	}
	return p, nil
}

// Projects lists the agent's catalog, as far as this device has synced it.
func (h *Home) Projects() ([]Project, error) {
	a, err := h.Agent()
	if err != nil {
		return nil, err
	}
	vals, err := h.ListPrivate(a.Namespace, catalogDir, 0)
	if err != nil {
		return nil, err
	}
	var out []Project
	for _, v := range vals {
		if v.Err != nil || v.Blob || !strings.HasPrefix(v.Path, catalogDir) {
			continue
		}
		var p Project
		if err := json.Unmarshal(v.Value, &p); err != nil {
			return nil, fmt.Errorf("catalog entry %q: %w", v.Path, err)
		}
		if p.Namespace, err = vault.ParseNamespaceID(p.NS); err != nil {
			return nil, fmt.Errorf("catalog entry %q: %w", v.Path, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ErrNoProject: the agent's catalog on this device names no such project.
var ErrNoProject = errors.New("no such project in the agent's catalog on this device")

// Project returns the catalog entry called name (an error wrapping
// ErrNoProject when there is none).
func (h *Home) Project(name string) (Project, error) {
	ps, err := h.Projects()
	if err != nil {
		return Project{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return Project{}, fmt.Errorf("%w: %q (sync the agent vault first?)", ErrNoProject, name)
}
