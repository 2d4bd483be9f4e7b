package trace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// pickleEntries decodes a pickled dict keyed by client id.
func pickleEntries[T any](data []byte, conv convertFunc[T]) ([]keyed[T], error) {
	top, err := unpickle(data)
	if err != nil {
		return nil, err
	}
	d, ok := top.(*types.Dict)
	if !ok || d == nil {
		return nil, fmt.Errorf("top level is a %s, want a dict keyed by client id", pyType(top))
	}
	entries := make([]keyed[T], 0, len(*d))
	for _, e := range *d {
		key, err := parseKey(e.Key)
		if err != nil {
			return nil, err
		}
		val, err := conv(e.Value)
		if err != nil {
			return nil, fmt.Errorf("client %s: %w", keyString(e.Key), err)
		}
		entries = append(entries, keyed[T]{key, val})
	}
	return entries, nil
}

// unpickle runs gopickle over data after checkPickle has vouched for it.
// gopickle trusts length fields and indexes slices without checks, so on
// hostile input it could allocate gigabytes or panic; checkPickle bounds
// every allocation by the input size, and the recover turns any remaining
// panic into an error.
func unpickle(data []byte) (v any, err error) {
	if err := checkPickle(data); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("invalid pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	v, err = u.Load()
	if err != nil {
		return nil, fmt.Errorf("invalid pickle: %w", err)
	}
	return v, nil
}

// Limits on numbers written out in full. Trace numbers fit in 64 bits; these
// only stop a crafted file from making big-integer decoding (quadratic in
// gopickle) run for minutes.
const (
	maxLongBytes = 64   // LONG1/LONG4 payload
	maxLineBytes = 1024 // INT/LONG/FLOAT text and other line arguments
)

// checkPickle walks the opcode stream the way an unpickler would, without
// building anything, up to the STOP opcode. It refuses:
//   - any length or frame size larger than the bytes that remain, so that the
//     decoder never allocates more than the input's size for one argument;
//   - opcodes that rebuild Python objects (GLOBAL, REDUCE, BUILD, ...),
//     persistent ids, extensions and out-of-band buffers, and sets: a trace is
//     only dicts, lists, numbers and strings, and refusing the rest keeps the
//     decoder on its plainest paths;
//   - protocols above 5 and unknown opcodes.
func checkPickle(data []byte) error {
	pos := 0
	need := func(n uint64, what string, at int) error {
		if n > uint64(len(data)-pos) {
			return fmt.Errorf("invalid pickle: %s at offset %d needs %d bytes, only %d left", what, at, n, len(data)-pos)
		}
		return nil
	}
	for pos < len(data) {
		at := pos
		op := data[pos]
		pos++
		switch op {
		case '.': // STOP
			return nil
		case '(', '0', '1', '2', 'N', 'a', 'd', '}', 'e', 'l', ']', 's', 't', ')', 'u',
			0x85, 0x86, 0x87, 0x88, 0x89, 0x94:
			// MARK POP POP_MARK DUP NONE APPEND DICT EMPTY_DICT APPENDS LIST
			// EMPTY_LIST SETITEM TUPLE EMPTY_TUPLE SETITEMS TUPLE1-3
			// NEWTRUE NEWFALSE MEMOIZE: no argument.
		case 'F', 'I', 'L', 'S', 'V', 'g', 'p':
			// FLOAT INT LONG STRING UNICODE GET PUT: newline-terminated text.
			i := bytes.IndexByte(data[pos:], '\n')
			if i < 0 {
				return fmt.Errorf("invalid pickle: opcode %q at offset %d has no end of line", op, at)
			}
			if (op == 'I' || op == 'L' || op == 'F' || op == 'g' || op == 'p') && i > maxLineBytes {
				return fmt.Errorf("invalid pickle: number of %d digits at offset %d", i, at)
			}
			pos += i + 1
		case 'K', 'h', 'q': // BININT1 BINGET BINPUT
			if err := need(1, "argument", at); err != nil {
				return err
			}
			pos++
		case 'M': // BININT2
			if err := need(2, "argument", at); err != nil {
				return err
			}
			pos += 2
		case 'J', 'j', 'r': // BININT LONG_BINGET LONG_BINPUT
			if err := need(4, "argument", at); err != nil {
				return err
			}
			pos += 4
		case 'G': // BINFLOAT
			if err := need(8, "argument", at); err != nil {
				return err
			}
			pos += 8
		case 0x80: // PROTO
			if err := need(1, "argument", at); err != nil {
				return err
			}
			if p := data[pos]; p > 5 {
				return fmt.Errorf("invalid pickle: unsupported protocol %d", p)
			}
			pos++
		case 0x95: // FRAME: its contents are ordinary opcodes, walked in turn.
			if err := need(8, "argument", at); err != nil {
				return err
			}
			n := binary.LittleEndian.Uint64(data[pos:])
			pos += 8
			if err := need(n, "frame", at); err != nil {
				return err
			}
		case 'U', 'C', 0x8c, 0x8a:
			// SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE LONG1: 1-byte length.
			if err := need(1, "length", at); err != nil {
				return err
			}
			n := uint64(data[pos])
			pos++
			if op == 0x8a && (n == 0 || n > maxLongBytes) {
				return fmt.Errorf("invalid pickle: integer of %d bytes at offset %d", n, at)
			}
			if err := need(n, "string", at); err != nil {
				return err
			}
			pos += int(n)
		case 'T', 'X', 'B', 0x8b:
			// BINSTRING BINUNICODE BINBYTES LONG4: 4-byte length.
			if err := need(4, "length", at); err != nil {
				return err
			}
			n := uint64(binary.LittleEndian.Uint32(data[pos:]))
			pos += 4
			if (op == 'T' || op == 0x8b) && n >= 1<<31 {
				return fmt.Errorf("invalid pickle: negative length at offset %d", at)
			}
			if op == 0x8b && (n == 0 || n > maxLongBytes) {
				return fmt.Errorf("invalid pickle: integer of %d bytes at offset %d", n, at)
			}
			if err := need(n, "string", at); err != nil {
				return err
			}
			pos += int(n)
		case 0x8d, 0x8e, 0x96:
			// BINUNICODE8 BINBYTES8 BYTEARRAY8: 8-byte length.
			if err := need(8, "length", at); err != nil {
				return err
			}
			n := binary.LittleEndian.Uint64(data[pos:])
			pos += 8
			if err := need(n, "string", at); err != nil {
				return err
			}
			pos += int(n)
		case 'c', 'i', 'o', 'R', 'b', 0x81, 0x92, 0x93, 'P', 'Q', 0x82, 0x83, 0x84, 0x97, 0x98:
			return fmt.Errorf("invalid trace pickle: opcode %s at offset %d rebuilds a Python object; "+
				"a trace holds only dicts, lists, numbers and strings", opName(op), at)
		case 0x8f, 0x90, 0x91:
			return fmt.Errorf("invalid trace pickle: opcode %s at offset %d builds a set; "+
				"a trace holds only dicts, lists, numbers and strings", opName(op), at)
		default:
			return fmt.Errorf("invalid pickle: unknown opcode 0x%02x at offset %d", op, at)
		}
	}
	return errors.New("invalid pickle: truncated (no STOP opcode)")
}

// opName names the opcodes checkPickle refuses, for its error messages.
func opName(op byte) string {
	names := map[byte]string{
		'c': "GLOBAL", 'i': "INST", 'o': "OBJ", 'R': "REDUCE", 'b': "BUILD",
		0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 'P': "PERSID",
		'Q': "BINPERSID", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
		0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
		0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
	}
	if n, ok := names[op]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", op)
}
