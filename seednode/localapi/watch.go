//go:build cgo

package localapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// watchEvent is the data of a "state" event: the document's heads and the
// JSON at the watched path (absent when nothing is there).
type watchEvent struct {
	Heads []string        `json:"heads"`
	Value json.RawMessage `json:"value,omitempty"`
}

// watch: GET /v1/vaults/VAULT/watch/DOC[?path=P], server-sent events. A
// "state" event carries the heads and the JSON at P now, then after every
// merged change (local, through the API, or by sync; changes that land
// together may come as one event with the newest state); a comment line
// every Heartbeat; an "end" event when serve stops.
func (hd *Handler) watch(w http.ResponseWriter, r *http.Request, _ vault.NamespaceID, od *openDoc) error {
	p, err := queryPath(r)
	if err != nil {
		return err
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return errors.New("this connection cannot stream events")
	}
	poke := make(chan struct{}, 1)
	hd.docs.subscribe(od, poke)
	defer hd.docs.unsubscribe(od, poke)

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	heartbeat := time.NewTicker(hd.o.Heartbeat)
	defer heartbeat.Stop()
	var last []string
	for {
		ev, err := stateEvent(od.d, p)
		if err != nil {
			return sendEvent(w, flusher, "error", map[string]string{"error": err.Error()})
		}
		if last == nil || !slices.Equal(ev.Heads, last) {
			if err := sendEvent(w, flusher, "state", ev); err != nil {
				return nil // the client went
			}
			last = ev.Heads
		}
		if err := hd.waitPoke(w, r, flusher, poke, heartbeat); err != nil {
			return nil
		}
	}
}

// errStreamEnd ends a watch stream.
var errStreamEnd = errors.New("watch stream ended")

// waitPoke waits for a change, sending heartbeats meanwhile; it returns
// errStreamEnd when the client went or serve stops.
func (hd *Handler) waitPoke(w http.ResponseWriter, r *http.Request, f http.Flusher, poke <-chan struct{}, heartbeat *time.Ticker) error {
	for {
		select {
		case <-poke:
			return nil
		case <-r.Context().Done():
			return errStreamEnd
		case <-hd.closing.Done():
			_ = sendEvent(w, f, "end", map[string]string{"reason": "seedfleet serve is stopping"})
			return errStreamEnd
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return errStreamEnd
			}
			f.Flush()
		}
	}
}

// stateEvent reads the heads and the JSON at p.
func stateEvent(d *state.Document, p state.Path) (watchEvent, error) {
	heads, raw, err := snapshot(d, p)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		if _, ok := errors.AsType[*docError](err); !ok {
			return watchEvent{}, err
		}
	}
	if err != nil {
		raw = nil // nothing at p (yet)
	}
	return watchEvent{Heads: nonNil(heads), Value: raw}, nil
}

// sendEvent writes one server-sent event.
func sendEvent(w http.ResponseWriter, f http.Flusher, name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, strings.TrimSpace(string(raw))); err != nil {
		return err
	}
	f.Flush()
	return nil
}
