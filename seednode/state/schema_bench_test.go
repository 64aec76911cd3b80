//go:build cgo

package state

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAppendToLongConversation: what appending one message costs in a
// conversation of 10,000 messages, checked against the conversation schema
// where it wrote; the baseline is the same append, interleaved, to a
// document with no schema; and for comparison, what checking the whole
// document would cost.
func BenchmarkAppendToLongConversation(b *testing.B) {
	const n, rounds = 10_000, 40
	homes, ns := agentDevices(b, "laptop")
	history := make([]any, n)
	for i := range history {
		history[i] = map[string]any{"from": "ada", "text": fmt.Sprintf("message %d of a long conversation", i), "at": "2026-05-01T10:00:00Z"}
	}
	names := []string{"notes/long", "conversations/long"}
	docs := make([]*Document, len(names))
	for i, name := range names {
		docs[i] = mustOpen(b, homes[0], ns, name)
		docs[i].SnapshotEvery = -1
		mustChange(b, docs[i], func(tx *Tx) error { return tx.Set(Path{"messages"}, history) })
	}
	msg := map[string]any{"from": "ada", "text": "one more", "at": "2026-05-01T10:00:01Z"}
	spent := make([]time.Duration, len(docs))
	for r := range rounds + 2 {
		for i, d := range docs {
			start := time.Now()
			mustChange(b, d, func(tx *Tx) error { return tx.Append(Path{"messages"}, msg) })
			if r >= 2 { // the first rounds warm up
				spent[i] += time.Since(start)
			}
		}
	}
	sch, _ := SchemaFor(names[1])
	start := time.Now()
	if found, err := validateDoc(docs[1].doc, sch); err != nil || len(found) > 0 {
		b.Fatalf("the conversation: %v, %v", found, err)
	}
	whole := time.Since(start)
	fmt.Printf("BENCH state_append_10k_baseline_ms %.2f ms\n", millis(spent[0]/rounds))
	fmt.Printf("BENCH state_append_10k_conversation_ms %.2f ms\n", millis(spent[1]/rounds))
	fmt.Printf("BENCH state_check_whole_10k_conversation_ms %.1f ms\n", millis(whole))
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
