package pickle

import (
	"errors"
	"fmt"
)

// size is what a value holds, counting a shared value once per place it
// appears: elements (itself and everything inside) and bytes of strings.
type size struct{ elements, bytes int64 }

// add sums two sizes, saturating rather than overflowing: nested reuse
// can make the true count astronomically large.
func (s size) add(t size) size {
	sum := func(a, b int64) int64 {
		if a > 1<<62-b {
			return 1 << 62
		}
		return a + b
	}
	return size{sum(s.elements, t.elements), sum(s.bytes, t.bytes)}
}

// sizer measures a decoded value. seen holds the size of each shared
// container measured so far, so that a value in many places is walked
// once and the walk takes time in proportion to the values decoded, not
// to their expanded count.
type sizer struct {
	shared map[any]bool
	seen   map[any]size
}

// identity returns what identifies a container: its pointer, or for a
// tuple the address of its first slot (every tuple has its own array).
func identity(v any) (any, bool) {
	switch x := v.(type) {
	case *List:
		return x, true
	case *Dict:
		return x, true
	case Tuple:
		if len(x) > 0 {
			return &x[0], true
		}
	}
	return nil, false
}

var errCycle = errors.New("the value contains itself (a recursive structure, which plain data never is)")

// inProgress marks a container being measured: meeting it again is a
// cycle.
var inProgress = size{elements: -1}

func (s *sizer) size(v any, depth int) (size, error) {
	var parts [2][]any // a list's or tuple's items; a dict's keys and values
	switch x := v.(type) {
	case string:
		return size{1, int64(len(x))}, nil
	case Bytes:
		return size{1, int64(len(x))}, nil
	case *List:
		parts[0] = x.Items
	case *Dict:
		parts[0], parts[1] = x.Keys, x.Vals
	case Tuple:
		parts[0] = x
	default: // numbers, None, and the caller's objects
		return size{1, 0}, nil
	}
	if depth >= maxDepth {
		return size{}, fmt.Errorf("containers nested more than %d deep", maxDepth)
	}
	key, shared := identity(v)
	shared = shared && s.shared[key]
	if shared {
		if got, ok := s.seen[key]; ok {
			if got == inProgress {
				return size{}, errCycle
			}
			return got, nil
		}
		s.seen[key] = inProgress
	}
	total := size{1, 0}
	for _, items := range parts {
		for _, it := range items {
			sz, err := s.size(it, depth+1)
			if err != nil {
				return size{}, err
			}
			total = total.add(sz)
		}
	}
	if shared {
		s.seen[key] = total
	}
	return total, nil
}
