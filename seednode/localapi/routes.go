//go:build cgo

package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// HeadsHeader carries a document's heads (change hashes, comma-separated,
// sorted) on a read.
const HeadsHeader = "Seedfleet-Heads"

// MergePatchType is the content type of a JSON merge patch (RFC 7396).
const MergePatchType = "application/merge-patch+json"

// Routes. VAULT is one path segment: "agent", "agent%2FPROJECT" (the
// slash escaped) or a namespace ID; DOC is the rest of the path.
func (hd *Handler) routes() {
	hd.mux.HandleFunc("/v1/vaults", hd.methods(forAgent, map[string]handler{http.MethodGet: hd.vaults}))
	hd.mux.HandleFunc("/v1/vaults/{vault}/docs", hd.methods(forVault, map[string]handler{http.MethodGet: hd.list}))
	hd.mux.HandleFunc("/v1/vaults/{vault}/docs/{doc...}", hd.methods(forDoc, map[string]handler{
		http.MethodGet: hd.read, http.MethodPut: hd.change, http.MethodPatch: hd.change,
		http.MethodDelete: hd.change, http.MethodPost: hd.change,
	}))
	hd.mux.HandleFunc("/v1/vaults/{vault}/history/{doc...}", hd.methods(forDoc, map[string]handler{http.MethodGet: hd.history}))
	hd.mux.HandleFunc("/v1/vaults/{vault}/watch/{doc...}", hd.methods(forDoc, map[string]handler{http.MethodGet: hd.watch}))
	hd.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such route: %s", r.URL.Path),
			"routes are /v1/vaults, /v1/vaults/VAULT/docs, /v1/vaults/VAULT/docs/DOC, /v1/vaults/VAULT/history/DOC and /v1/vaults/VAULT/watch/DOC (VAULT: agent or agent%2FPROJECT)")
	})
}

// A handler answers a request, given what its route names: the vault
// (resolved) and the document (open), as far as the route's scope goes.
type handler func(w http.ResponseWriter, r *http.Request, ns vault.NamespaceID, od *openDoc) error

// scope is what a route names.
type scope int

const (
	forAgent scope = iota // the agent: no vault, no document
	forVault              // {vault}
	forDoc                // {vault} and {doc}
)

// methods dispatches by method, resolves the vault and opens the document
// as far as the scope goes, and writes any error the handler returns as
// JSON.
func (hd *Handler) methods(sc scope, byMethod map[string]handler) http.HandlerFunc {
	allowed := slices.Sorted(maps.Keys(byMethod))
	return func(w http.ResponseWriter, r *http.Request) {
		fn, ok := byMethod[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not answered here", "allowed: "+strings.Join(allowed, ", "))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, hd.o.MaxBody)
		if err := hd.serve(w, r, sc, fn); err != nil {
			status, hint := classify(err)
			writeError(w, status, err.Error(), hint)
		}
	}
}

func (hd *Handler) serve(w http.ResponseWriter, r *http.Request, sc scope, fn handler) error {
	if sc == forAgent {
		return fn(w, r, vault.NamespaceID{}, nil)
	}
	ns, err := hd.vault(r.PathValue("vault"))
	if err != nil {
		return err
	}
	if sc == forVault {
		return fn(w, r, ns, nil)
	}
	name := r.PathValue("doc")
	if err := state.CheckName(name); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	od, err := hd.docs.acquire(ns, name)
	if err != nil {
		return err
	}
	defer hd.docs.release(od)
	return fn(w, r, ns, od)
}

// errNotPrivate: agent state lives only in the agent's private vaults.
var errNotPrivate = errors.New("not one of the agent's private vaults")

// maxResolved bounds the cache of resolved vault names.
const maxResolved = 64

// vault resolves the vault segment as the CLI resolves VAULT. What
// resolved is kept: the agent's vault and its projects' stay what they are
// while serve holds the home, and resolving reads files each time.
func (hd *Handler) vault(name string) (vault.NamespaceID, error) {
	hd.resolvedMu.Lock()
	ns, ok := hd.resolved[name]
	hd.resolvedMu.Unlock()
	if ok {
		return ns, nil
	}
	ns, err := hd.h.ResolveVault(name)
	if err != nil {
		return ns, err
	}
	if !hd.h.IsPrivate(ns) {
		return ns, fmt.Errorf("vault %s: %w", name, errNotPrivate)
	}
	hd.resolvedMu.Lock()
	if len(hd.resolved) < maxResolved {
		hd.resolved[name] = ns
	}
	hd.resolvedMu.Unlock()
	return ns, nil
}

// vaultInfo names a vault the API reads: Name as the CLI takes it, ID as
// one URL segment.
type vaultInfo struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// vaults: GET /v1/vaults, the agent's vault and its projects' as far as
// this device has synced the catalog.
func (hd *Handler) vaults(w http.ResponseWriter, _ *http.Request, _ vault.NamespaceID, _ *openDoc) error {
	a, err := hd.h.Agent()
	if err != nil {
		return err
	}
	projects, err := hd.h.Projects()
	if err != nil {
		return err
	}
	out := []vaultInfo{{Name: client.AgentVaultName, ID: a.Namespace.String()}}
	for _, p := range projects {
		out = append(out, vaultInfo{Name: client.AgentVaultName + "/" + p.Name, ID: p.Namespace.String()})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"vaults": out})
}

// list: GET /v1/vaults/VAULT/docs.
func (hd *Handler) list(w http.ResponseWriter, r *http.Request, ns vault.NamespaceID, _ *openDoc) error {
	names, err := state.Documents(hd.h, ns)
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"vault": r.PathValue("vault"), "documents": names})
}

// read: GET /v1/vaults/VAULT/docs/DOC[?path=P]: the JSON at P, the heads
// in HeadsHeader.
func (hd *Handler) read(w http.ResponseWriter, r *http.Request, _ vault.NamespaceID, od *openDoc) error {
	p, err := queryPath(r)
	if err != nil {
		return err
	}
	heads, raw, err := snapshot(od.d, p)
	if err != nil {
		return err
	}
	w.Header().Set(HeadsHeader, strings.Join(heads, ","))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(raw, '\n')) // a client gone is no error of ours
	return nil
}

// snapshot reads the document's heads and then the JSON at p: the value
// is at least as new as the heads. A path the document does not hold is a
// docError.
func snapshot(d *state.Document, p state.Path) ([]string, []byte, error) {
	heads, err := d.Heads()
	if err != nil {
		return nil, nil, err
	}
	raw, err := d.JSON(p)
	if err != nil && !errors.Is(err, state.ErrAutomerge) {
		err = &docError{err: err}
	}
	return heads, raw, err
}

func queryPath(r *http.Request) (state.Path, error) {
	s := r.URL.Query().Get("path")
	if err := checkPath(s); err != nil {
		return nil, err
	}
	return state.ParsePath(s), nil
}

// change: PUT (set), PATCH (merge patch), DELETE and POST (ops) on
// /v1/vaults/VAULT/docs/DOC. Every request is one transaction.
func (hd *Handler) change(w http.ResponseWriter, r *http.Request, _ vault.NamespaceID, od *openDoc) error {
	ops, err := opsOf(r)
	if err != nil {
		return err
	}
	err = od.d.Change(func(tx *state.Tx) error {
		for i, o := range ops {
			if err := o.apply(tx); err != nil {
				return &docError{index: i, many: len(ops) > 1, change: true, err: err}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	hd.docs.notify(od)
	heads, err := od.d.Heads()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"heads": nonNil(heads)})
}

// opsOf reads the ops a change request stands for.
func opsOf(r *http.Request) ([]op, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if r.Method == http.MethodPost {
		return decodeOps(body)
	}
	o := op{Path: r.URL.Query().Get("path")}
	switch r.Method {
	case http.MethodPut:
		o.Op = "set"
	case http.MethodDelete:
		o.Op = "delete"
	case http.MethodPatch:
		o.Op = "patch"
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != MergePatchType {
			return nil, fmt.Errorf("%w: PATCH takes a JSON merge patch: Content-Type: %s", errMediaType, MergePatchType)
		}
	}
	if r.Method != http.MethodDelete {
		if !json.Valid(body) {
			return nil, badRequest("the body is not JSON (a string is quoted: \"dark\")")
		}
		o.Value = json.RawMessage(bytes.TrimSpace(body))
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return []op{o}, nil
}

// errMediaType: the request's content type does not fit its method.
var errMediaType = errors.New("unsupported content type")

// docError is a path or an op the document refused (what it holds does not
// fit). For a change, nothing of the request is stored.
type docError struct {
	index  int
	many   bool // the op is one of several
	change bool // a change request: nothing of it was stored
	err    error
}

func (e *docError) Error() string {
	msg := e.err.Error()
	if e.many {
		msg = fmt.Sprintf("op %d: %s", e.index, msg)
	}
	if e.change {
		msg += " (nothing of the request was stored)"
	}
	return msg
}

func (e *docError) Unwrap() error { return e.err }

// apply runs the op in tx.
func (o op) apply(tx *state.Tx) error {
	p := state.ParsePath(o.Path)
	switch o.Op {
	case "set":
		return tx.Set(p, o.Value)
	case "delete":
		return tx.Delete(p)
	case "patch":
		return tx.MergePatch(p, o.Value)
	case "append":
		return tx.Append(p, o.Value)
	case "incr":
		return tx.Increment(p, *o.Delta)
	case "text":
		pos := -1
		if o.At != nil {
			pos = *o.At
		}
		if pos == -1 {
			n, err := tx.TextLen(p)
			if err != nil {
				return err
			}
			pos = n
		}
		return tx.EditText(p, pos, o.Delete, o.Insert)
	}
	return badRequest("op %q", o.Op) // check refused it already
}

// historyEntry is one change as the API shows it.
type historyEntry struct {
	Hash    string    `json:"hash"`
	Time    time.Time `json:"time"`
	Device  string    `json:"device"`
	Seq     uint64    `json:"seq"`
	Message string    `json:"message"`
}

// history: GET /v1/vaults/VAULT/history/DOC.
func (hd *Handler) history(w http.ResponseWriter, _ *http.Request, _ vault.NamespaceID, od *openDoc) error {
	hist, err := od.d.History()
	if err != nil {
		return err
	}
	out := make([]historyEntry, 0, len(hist))
	for _, c := range hist {
		out = append(out, historyEntry{Hash: c.Hash, Time: c.Time.UTC(), Device: c.Device, Seq: c.Seq, Message: c.Message})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"changes": out})
}

// classify picks the status and the hint for an error.
func classify(err error) (int, string) {
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("a body holds at most %d bytes: split the change into several requests", maxErr.Limit)
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, "fix the request: the README's \"Local API\" section shows each operation"
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType, "send the header Content-Type: " + MergePatchType
	case errors.Is(err, client.ErrBadVaultName):
		return http.StatusBadRequest, "VAULT is agent, agent%2FPROJECT (the slash escaped) or a namespace ID"
	case errors.Is(err, client.ErrNoProject), errors.Is(err, client.ErrUnknownVault):
		return http.StatusNotFound, "`seedfleet vault list` and `seedfleet project list` show the vaults this device knows; a vault made on another device is known after a sync"
	case errors.Is(err, client.ErrNoAgent):
		return http.StatusNotFound, "this device acts for no agent yet: `seedfleet agent init` (first device) or `seedfleet device pair`"
	case errors.Is(err, errNotPrivate):
		return http.StatusBadRequest, "agent state lives in \"agent\" or \"agent%2FPROJECT\""
	case errors.Is(err, client.ErrNoEnvelope):
		return http.StatusForbidden, "approve this device on the agent's first device, then sync the vault"
	case errors.Is(err, state.ErrInvalid):
		return http.StatusUnprocessableEntity, "the document has a JSON Schema (the README lists the standard documents'): write what the error names as the schema wants; nothing was stored"
	case errors.Is(err, state.ErrNotFound):
		return http.StatusNotFound, "nothing is at this path: read the document (GET without ?path) to see what it holds"
	}
	if de, ok := errors.AsType[*docError](err); ok {
		if !de.change {
			return http.StatusNotFound, "the document holds nothing there: read it (GET without ?path) to see what it holds"
		}
		return http.StatusConflict, "the document holds another kind of value there: read it (GET) and address what it holds"
	}
	switch {
	case errors.Is(err, errTooManyDocuments), errors.Is(err, errClosing):
		return http.StatusServiceUnavailable, "retry in a moment"
	}
	return http.StatusInternalServerError, "see the output of seedfleet serve; retry, or report a bug if it persists"
}

// writeJSON answers v; a client gone while it is written is no error of
// ours.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(raw, '\n'))
	return nil
}

func writeError(w http.ResponseWriter, status int, msg, hint string) {
	w.Header().Del(HeadsHeader)
	_ = writeJSON(w, status, map[string]string{"error": msg, "hint": hint})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
