package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"

	"github.com/fedscale/fedscale-go/runtime/pickle"
)

// keyed is one decoded trace entry with its client key, before ordering.
type keyed[T any] struct {
	key int64
	val T
}

// convertFunc turns one decoded dict value (a *pickle.Dict from a pickle or a
// map[string]any from JSON) into a trace entry.
type convertFunc[T any] func(v any) (T, error)

// parse decodes data in whichever format it is in, converts every entry and
// returns them ordered by key.
func parse[T any](data []byte, name string, conv convertFunc[T]) ([]T, error) {
	var (
		entries []keyed[T]
		err     error
	)
	switch detectFormat(data) {
	case formatPickle:
		entries, err = pickleEntries(data, conv)
	case formatJSON:
		entries, err = jsonEntries(data, conv)
	case formatEmpty:
		err = errors.New("file is empty")
	default:
		err = fmt.Errorf("unrecognized format (first byte 0x%02x): want a Python pickle or a JSON object", data[0])
	}
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("trace %s: no clients (empty dict)", name)
	}
	// Python dicts usually come in key order already; the sort is then a
	// linear pass, and it is what makes "entry k mod len" well defined.
	slices.SortStableFunc(entries, func(a, b keyed[T]) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := make([]T, len(entries))
	for i, e := range entries {
		if i > 0 && entries[i-1].key == e.key {
			return nil, fmt.Errorf("trace %s: client %d appears twice", name, e.key)
		}
		out[i] = e.val
	}
	return out, nil
}

type format int

const (
	formatUnknown format = iota
	formatEmpty
	formatPickle
	formatJSON
)

// detectFormat tells a pickle from JSON by the first bytes. Pickles of
// protocol 2 and later start with the PROTO opcode (0x80); protocol 0 and 1
// dicts start with MARK '(' or EMPTY_DICT '}', and lists with ']' (accepted
// here so that a wrong top level gets a precise error). JSON starts with '{'
// or '[' after optional whitespace and byte-order mark.
func detectFormat(data []byte) format {
	if len(data) == 0 {
		return formatEmpty
	}
	switch data[0] {
	case 0x80, '(', '}', ']':
		return formatPickle
	}
	rest := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	rest = bytes.TrimLeft(rest, " \t\r\n")
	if len(rest) == 0 {
		return formatEmpty
	}
	if rest[0] == '{' || rest[0] == '[' {
		return formatJSON
	}
	return formatUnknown
}

// jsonEntries decodes a JSON object keyed by client id, one entry at a time
// so that an error can name the entry.
func jsonEntries[T any](data []byte, conv convertFunc[T]) ([]keyed[T], error) {
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	dec.UseNumber() // keeps integers exact and lets 14400.0 count as an int
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("top level is a JSON %s, want an object keyed by client id", jsonKind(tok))
	}
	var entries []keyed[T]
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON after %d clients: %w", len(entries), err)
		}
		k, _ := tok.(string) // object keys are always strings
		key, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("client %s: invalid JSON: %w", quoteKey(k), err)
		}
		val, err := conv(v)
		if err != nil {
			return nil, fmt.Errorf("client %s: %w", quoteKey(k), err)
		}
		entries = append(entries, keyed[T]{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON after %d clients: %w", len(entries), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level object")
	}
	return entries, nil
}

func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "array"
		}
		return "delimiter"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// fields looks up names in a dict value, whichever decoder produced it:
// vals[i] is the value of names[i], nil when absent. Keys that are not
// strings cannot be any of the names a trace uses and are skipped.
func fields(v any, names []string, vals []any) error {
	set := func(name string, val any) {
		for i, n := range names {
			if n == name {
				vals[i] = val
			}
		}
	}
	switch d := v.(type) {
	case *pickle.Dict:
		for i, k := range d.Keys {
			if name, ok := pickle.Text(k); ok {
				set(name, d.Vals[i])
			}
		}
		return nil
	case map[string]any:
		for k, val := range d {
			set(k, val)
		}
		return nil
	}
	return fmt.Errorf("value is a %s, want a dict", pyType(v))
}

// The fields of each trace's entries; the last two of each are the
// other trace's, looked up only to tell a user who swapped the files.
var (
	capacityFields = []string{"computation", "communication", "finish_time", "active"}
	behaviorFields = []string{"duration", "finish_time", "active", "inactive", "model", "computation", "communication"}
)

// capacityFrom converts one client_device_capacity value.
func capacityFrom(v any) (Capacity, error) {
	var f [4]any
	if err := fields(v, capacityFields, f[:]); err != nil {
		return Capacity{}, err
	}
	comp, comm := f[0], f[1]
	if comp == nil && comm == nil && (f[2] != nil || f[3] != nil) {
		return Capacity{}, errors.New("missing 'computation' and 'communication': this looks like a client_behave_trace, not a client_device_capacity")
	}
	var c Capacity
	var err error
	if c.Computation, err = numberField("computation", comp); err != nil {
		return Capacity{}, err
	}
	if c.Communication, err = numberField("communication", comm); err != nil {
		return Capacity{}, err
	}
	return c, c.Validate()
}

// behaviorFrom converts one client_behave_trace value. 'finish_time',
// 'active' and 'inactive' are required; 'duration' and 'model' are only
// informative and may be absent.
func behaviorFrom(v any) (Behavior, error) {
	var f [7]any
	if err := fields(v, behaviorFields, f[:]); err != nil {
		return Behavior{}, err
	}
	dur, fin, act, inact, model := f[0], f[1], f[2], f[3], f[4]
	if fin == nil && act == nil && (f[5] != nil || f[6] != nil) {
		return Behavior{}, errors.New("missing 'finish_time' and 'active': this looks like a client_device_capacity, not a client_behave_trace")
	}
	var b Behavior
	var err error
	if dur != nil {
		if b.Duration, err = toInt(dur); err != nil {
			return Behavior{}, fmt.Errorf("'duration': %w", err)
		}
	}
	if fin == nil {
		return Behavior{}, errors.New("missing 'finish_time'")
	}
	if b.FinishTime, err = toInt(fin); err != nil {
		return Behavior{}, fmt.Errorf("'finish_time': %w", err)
	}
	if b.Active, err = intListField("active", act); err != nil {
		return Behavior{}, err
	}
	if b.Inactive, err = intListField("inactive", inact); err != nil {
		return Behavior{}, err
	}
	switch m := model.(type) {
	case nil:
	case string:
		b.Model = m
	case pickle.Bytes:
		b.Model = string(m)
	default:
		return Behavior{}, fmt.Errorf("'model' is a %s, want a str", pyType(model))
	}
	return b, b.Validate()
}

func numberField(name string, v any) (float64, error) {
	if v == nil {
		return 0, fmt.Errorf("missing '%s'", name)
	}
	f, err := toFloat(v)
	if err != nil {
		return 0, fmt.Errorf("'%s': %w", name, err)
	}
	return f, nil
}

func intListField(name string, v any) ([]int64, error) {
	if v == nil {
		return nil, fmt.Errorf("missing '%s'", name)
	}
	items, ok := v.([]any) // JSON
	if !ok {
		if items, ok = pickle.Items(v); !ok {
			return nil, fmt.Errorf("'%s' is a %s, want a list of ints", name, pyType(v))
		}
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, err := toInt(it)
		if err != nil {
			return nil, fmt.Errorf("'%s'[%d]: %w", name, i, err)
		}
		out[i] = n
	}
	return out, nil
}

// toFloat accepts the numbers a trace may hold: Python int and float, and
// JSON numbers. bool is refused although Python treats it as an int, because
// in a trace it can only be a mistake.
func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case int64:
		return float64(n), nil
	case float64:
		return n, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return 0, fmt.Errorf("number %s out of range", n)
		}
		return f, nil
	case *big.Int:
		return 0, fmt.Errorf("integer %s out of range", truncate(n.String()))
	}
	return 0, fmt.Errorf("want a number, got %s", describe(v))
}

// toInt accepts integers, and floats with an integral value (JSON writers
// and numpy-based scripts often produce 14400.0 for 14400).
func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case float64:
		return floatToInt(n)
	case json.Number:
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return 0, fmt.Errorf("integer %s out of range", truncate(string(n)))
		}
		return floatToInt(f)
	case *big.Int:
		return 0, fmt.Errorf("integer %s out of range", truncate(n.String()))
	}
	return 0, fmt.Errorf("want an int, got %s", describe(v))
}

func floatToInt(f float64) (int64, error) {
	// 2^63 is exactly representable; anything at or above it overflows.
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, fmt.Errorf("want an int, got float %v", f)
	}
	return int64(f), nil
}

// parseKey accepts a client key as an int or a string holding one.
func parseKey(k any) (int64, error) {
	switch key := k.(type) {
	case int64:
		return key, nil
	case string:
		n, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("client %s: key is not an integer", quoteKey(key))
		}
		return n, nil
	case pickle.Bytes:
		return parseKey(string(key))
	case *big.Int:
		return 0, fmt.Errorf("client %s: key out of range", truncate(key.String()))
	}
	return 0, fmt.Errorf("client key %s is not an integer", describe(k))
}

// keyString renders a client key for an error message.
func keyString(k any) string {
	switch key := k.(type) {
	case int64:
		return strconv.FormatInt(key, 10)
	case string:
		return quoteKey(key)
	case pickle.Bytes:
		return quoteKey(string(key))
	case *big.Int:
		return truncate(key.String())
	}
	return describe(k)
}

// quoteKey shows an int-like key bare and anything else quoted.
func quoteKey(k string) string {
	if _, err := strconv.ParseInt(k, 10, 64); err == nil {
		return k
	}
	return strconv.Quote(truncate(k))
}

// describe names a value's type, with the value when it is short.
func describe(v any) string {
	switch x := v.(type) {
	case bool:
		return fmt.Sprintf("bool %v", x)
	case string:
		return "str " + strconv.Quote(truncate(x))
	case nil:
		return "None"
	}
	return pyType(v)
}

// pyType names a decoded value's type the way Python would, for either
// decoder's values.
func pyType(v any) string {
	switch v.(type) {
	case json.Number:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	}
	return pickle.TypeName(v)
}

// truncate keeps error messages short whatever the input holds.
func truncate(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
