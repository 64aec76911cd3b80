package discovery

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/seedfleet/seedfleet/internal/pebblecache"
	"github.com/seedfleet/seedfleet/internal/pebblelog"
	"github.com/seedfleet/seedfleet/internal/pebblesched"
)

// OpenDatastore opens (creating) the ordered datastore in dir that seeds
// give the DHT (DHTOptions.Datastore) for provider records. kad-dht's
// default is an unordered in-memory map, where every provider lookup
// outside a small cache scans all records (560 µs at 10,000 records,
// measured): with ordered keys a lookup reads only its prefix, and records
// survive a restart.
//
// It is go-ds-pebble, on the same Pebble as the vault and blob stores, with
// their quiet logger and unsynced writes (records are soft state; Sync
// syncs the WAL). Close it after the DHT that uses it: Pebble panics on a
// store used after Close, and the DHT's own goroutines end in its Close.
func OpenDatastore(dir string) (*pebbleds.Datastore, error) {
	po := &pebble.Options{Logger: pebblelog.New(nil, "dht")}
	po.Experimental.CompactionScheduler = pebblesched.New()
	release := pebblecache.Attach(po, 8<<20)
	d, err := pebbleds.NewDatastore(dir, pebbleds.WithPebbleOpts(po), pebbleds.WithPebbleWriteOptions(pebble.NoSync))
	release()
	if err != nil {
		return nil, fmt.Errorf("DHT datastore %s: %w", dir, err)
	}
	return d, nil
}
