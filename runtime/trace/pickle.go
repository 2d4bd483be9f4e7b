package trace

import (
	"fmt"

	"github.com/fedscale/fedscale-go/runtime/pickle"
)

// traceBudget bounds the decoding of one pickled trace. FedScale's capacity
// trace holds about 500,000 clients of six values each (3 million in
// all) and its behavior trace fewer clients with a few dozen interval
// bounds each; this allows ten times that, while a small file whose memo
// references reuse one big list in every entry fails fast instead of
// expanding into gigabytes in the conversion below.
var traceBudget = pickle.Budget{Elements: 1 << 25, Bytes: 1 << 30}

// pickleEntries decodes a pickled dict keyed by client id. A trace is
// plain data: no Python object is rebuilt.
func pickleEntries[T any](data []byte, conv convertFunc[T]) ([]keyed[T], error) {
	top, err := pickle.Decode(data, traceBudget, nil)
	if err != nil {
		return nil, err
	}
	d, ok := top.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("top level is a %s, want a dict keyed by client id", pyType(top))
	}
	entries := make([]keyed[T], 0, len(d.Keys))
	for i, k := range d.Keys {
		key, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		val, err := conv(d.Vals[i])
		if err != nil {
			return nil, fmt.Errorf("client %s: %w", keyString(k), err)
		}
		entries = append(entries, keyed[T]{key, val})
	}
	return entries, nil
}
