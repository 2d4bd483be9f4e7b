package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// This file is a small pickle decoder for the files torchvision reads as
// CIFAR-10: a dict of lists, numbers and strings holding one NumPy uint8
// array. It runs the pickle machine for protocols 1 to 5 with every
// argument bounded by the bytes that remain (strings and arrays are
// slices of the input, never copies sized by a header), and calls no
// Python at all: the only "globals" it knows are the handful NumPy uses to
// rebuild an array (_reconstruct, ndarray, dtype, _frombuffer) and
// _codecs.encode (Python 3's protocol-2 spelling of bytes), each modelled
// here. Anything else is an error.

// Pickled values: nil (None), bool, int64, float64, string (Python 3 str),
// pyBytes (bytes, and Python 2 str, as torchvision's encoding='latin1'
// reads them untouched), pyTuple, *pyList, *pyDict, pyGlobal, *pyDtype and
// *pyArray.
type (
	pyBytes  []byte
	pyTuple  []any
	pyList   struct{ items []any }
	pyDict   struct{ keys, vals []any }
	pyGlobal struct{ module, name string }
	pyDtype  struct{ str string }
	pyArray  struct {
		shape []int
		dtype *pyDtype
		data  []byte
	}
)

// get returns the value stored under key, a str or bytes key.
func (d *pyDict) get(key string) (any, bool) {
	for i, k := range d.keys {
		switch k := k.(type) {
		case string:
			if k == key {
				return d.vals[i], true
			}
		case pyBytes:
			if string(k) == key {
				return d.vals[i], true
			}
		}
	}
	return nil, false
}

// maxPickleLong bounds LONG1/LONG4 payloads: array sizes and labels fit in
// 8 bytes.
const maxPickleLong = 8

// maxPickleValues bounds the values a pickle may push: each costs tens of
// bytes of Go memory for one byte of input, so a file of a billion DUP or
// EMPTY_LIST opcodes must not run to the end. A CIFAR-10 batch pushes about
// two per image (its label and file name); this allows batches of far more
// images than CIFAR-10 has.
const maxPickleValues = 1 << 20

// unpickle decodes one pickle from data.
func unpickle(data []byte) (any, error) {
	u := unpickler{data: data, memo: map[int]any{}}
	v, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("invalid pickle: %w", err)
	}
	return v, nil
}

type unpickler struct {
	data   []byte
	pos    int
	pushes int // values pushed so far, bounded by maxPickleValues
	stack  []any
	marks  []int // stack heights at each MARK
	memo   map[int]any
}

func (u *unpickler) take(n uint64, what string) ([]byte, error) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, fmt.Errorf("%s at offset %d needs %d bytes, only %d left", what, u.pos, n, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+int(n) : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

func (u *unpickler) line() ([]byte, error) {
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return nil, fmt.Errorf("text argument at offset %d has no end of line", u.pos)
	}
	if i > 1024 {
		return nil, fmt.Errorf("text argument of %d bytes at offset %d", i, u.pos)
	}
	b := u.data[u.pos : u.pos+i]
	u.pos += i + 1
	return b, nil
}

func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.take(uint64(n), "argument")
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func (u *unpickler) push(v any) {
	u.pushes++
	u.stack = append(u.stack, v)
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

// pop2 pops the two top values: below was pushed before top.
func (u *unpickler) pop2() (below, top any, err error) {
	if top, err = u.pop(); err != nil {
		return nil, nil, err
	}
	if below, err = u.pop(); err != nil {
		return nil, nil, err
	}
	return below, top, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the values above the last MARK and removes them and the
// mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) run() (any, error) {
	for u.pos < len(u.data) {
		at := u.pos
		op := u.data[u.pos]
		u.pos++
		err := u.step(op)
		if err == nil && (u.pushes > maxPickleValues || len(u.memo) > maxPickleValues) {
			err = fmt.Errorf("more than %d values; not a CIFAR-10 batch", maxPickleValues)
		}
		if err != nil {
			if err == errStop {
				if len(u.stack) != 1 || len(u.marks) != 0 {
					return nil, fmt.Errorf("STOP at offset %d with %d values on the stack", at, len(u.stack))
				}
				return u.stack[0], nil
			}
			return nil, fmt.Errorf("opcode 0x%02x at offset %d: %w", op, at, err)
		}
	}
	return nil, errors.New("truncated (no STOP opcode)")
}

var errStop = errors.New("stop")

func (u *unpickler) step(op byte) error {
	switch op {
	case '.': // STOP
		return errStop
	case 0x80: // PROTO
		p, err := u.uint(1)
		if err != nil {
			return err
		}
		if p > 5 {
			return fmt.Errorf("unsupported protocol %d", p)
		}
	case 0x95: // FRAME: a length prefix; the opcodes inside run as usual
		n, err := u.uint(8)
		if err != nil {
			return err
		}
		if n > uint64(len(u.data)-u.pos) {
			return fmt.Errorf("frame of %d bytes, only %d left", n, len(u.data)-u.pos)
		}
	case '(': // MARK
		// A mark is a value for the budget too, or a file of MARKs alone
		// would grow the mark stack without bound.
		u.pushes++
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		_, err := u.pop()
		return err
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'I': // INT: decimal text; I00/I01 are False/True
		b, err := u.line()
		if err != nil {
			return err
		}
		switch string(b) {
		case "00":
			u.push(false)
		case "01":
			u.push(true)
		default:
			v, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				return fmt.Errorf("INT %q", b)
			}
			u.push(v)
		}
	case 'L': // LONG: decimal text with an optional L suffix
		b, err := u.line()
		if err != nil {
			return err
		}
		v, err := strconv.ParseInt(string(bytes.TrimSuffix(b, []byte("L"))), 10, 64)
		if err != nil {
			return fmt.Errorf("LONG %q does not fit 64 bits", b)
		}
		u.push(v)
	case 'J': // BININT
		v, err := u.uint(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(uint32(v))))
	case 'K': // BININT1
		v, err := u.uint(1)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 'M': // BININT2
		v, err := u.uint(2)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 0x8a, 0x8b: // LONG1 LONG4: little-endian two's complement
		size := 1
		if op == 0x8b {
			size = 4
		}
		n, err := u.uint(size)
		if err != nil {
			return err
		}
		if n > maxPickleLong {
			return fmt.Errorf("integer of %d bytes", n)
		}
		b, err := u.take(n, "integer")
		if err != nil {
			return err
		}
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		if n > 0 && n < 8 && b[n-1]&0x80 != 0 {
			v |= ^uint64(0) << (8 * n) // sign-extend
		}
		u.push(int64(v))
	case 'F': // FLOAT: text
		b, err := u.line()
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("FLOAT %q", b)
		}
		u.push(v)
	case 'G': // BINFLOAT: big-endian double
		b, err := u.take(8, "argument")
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'U', 'C': // SHORT_BINSTRING SHORT_BINBYTES
		return u.blob(1, func(b []byte) any { return pyBytes(b) })
	case 'T', 'B': // BINSTRING BINBYTES
		return u.blob(4, func(b []byte) any { return pyBytes(b) })
	case 0x8e, 0x96: // BINBYTES8 BYTEARRAY8
		return u.blob(8, func(b []byte) any { return pyBytes(b) })
	case 0x8c: // SHORT_BINUNICODE
		return u.unicode(1)
	case 'X': // BINUNICODE
		return u.unicode(4)
	case 0x8d: // BINUNICODE8
		return u.unicode(8)
	case ']':
		u.push(&pyList{})
	case ')':
		u.push(pyTuple{})
	case '}':
		u.push(&pyDict{})
	case 'l', 't', 'd': // LIST TUPLE DICT from the marked items
		items, err := u.popMark()
		if err != nil {
			return err
		}
		switch op {
		case 'l':
			u.push(&pyList{items: items})
		case 't':
			u.push(pyTuple(items))
		default:
			d := &pyDict{}
			if err := d.setItems(items); err != nil {
				return err
			}
			u.push(d)
		}
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op - 0x84)
		if len(u.stack)-n < 0 || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
			return errors.New("stack underflow")
		}
		t := append(pyTuple(nil), u.stack[len(u.stack)-n:]...)
		u.stack = u.stack[:len(u.stack)-n]
		u.push(t)
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return err
		}
		l, err := u.list()
		if err != nil {
			return err
		}
		l.items = append(l.items, v)
	case 'e': // APPENDS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		l, err := u.list()
		if err != nil {
			return err
		}
		l.items = append(l.items, items...)
	case 's', 'u': // SETITEM SETITEMS
		var items []any
		if op == 's' {
			k, v, err := u.pop2()
			if err != nil {
				return err
			}
			items = []any{k, v}
		} else {
			var err error
			if items, err = u.popMark(); err != nil {
				return err
			}
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return fmt.Errorf("SETITEM on a %s", pyTypeName(t))
		}
		return d.setItems(items)
	case 'p', 'g': // PUT GET: decimal text index
		b, err := u.line()
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(string(b))
		if err != nil || i < 0 {
			return fmt.Errorf("memo index %q", b)
		}
		return u.memoOp(op == 'p', i)
	case 'q', 'h': // BINPUT BINGET
		i, err := u.uint(1)
		if err != nil {
			return err
		}
		return u.memoOp(op == 'q', int(i))
	case 'r', 'j': // LONG_BINPUT LONG_BINGET
		i, err := u.uint(4)
		if err != nil {
			return err
		}
		return u.memoOp(op == 'r', int(i))
	case 0x94: // MEMOIZE
		v, err := u.top()
		if err != nil {
			return err
		}
		u.memo[len(u.memo)] = v
	case 'c': // GLOBAL module\nname\n
		m, err := u.line()
		if err != nil {
			return err
		}
		n, err := u.line()
		if err != nil {
			return err
		}
		g, err := global(string(m), string(n))
		if err != nil {
			return err
		}
		u.push(g)
	case 0x93: // STACK_GLOBAL
		m, n, err := u.pop2()
		if err != nil {
			return err
		}
		ms, ok1 := m.(string)
		ns, ok2 := n.(string)
		if !ok1 || !ok2 {
			return errors.New("STACK_GLOBAL needs two strings")
		}
		g, err := global(ms, ns)
		if err != nil {
			return err
		}
		u.push(g)
	case 'R': // REDUCE
		f, args, err := u.pop2()
		if err != nil {
			return err
		}
		t, ok := args.(pyTuple)
		if !ok {
			return fmt.Errorf("REDUCE arguments are a %s, not a tuple", pyTypeName(args))
		}
		v, err := call(f, t)
		if err != nil {
			return err
		}
		u.push(v)
	case 'b': // BUILD
		state, err := u.pop()
		if err != nil {
			return err
		}
		obj, err := u.top()
		if err != nil {
			return err
		}
		return build(obj, state)
	default:
		return errors.New("not allowed in a CIFAR-10 batch (only dicts, lists, numbers, strings and NumPy uint8 arrays are)")
	}
	return nil
}

func (u *unpickler) blob(lenBytes int, mk func([]byte) any) error {
	n, err := u.uint(lenBytes)
	if err != nil {
		return err
	}
	b, err := u.take(n, "string")
	if err != nil {
		return err
	}
	u.push(mk(b))
	return nil
}

func (u *unpickler) unicode(lenBytes int) error {
	n, err := u.uint(lenBytes)
	if err != nil {
		return err
	}
	b, err := u.take(n, "string")
	if err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return errors.New("string is not UTF-8")
	}
	u.push(string(b))
	return nil
}

func (u *unpickler) list() (*pyList, error) {
	t, err := u.top()
	if err != nil {
		return nil, err
	}
	l, ok := t.(*pyList)
	if !ok {
		return nil, fmt.Errorf("APPEND to a %s", pyTypeName(t))
	}
	return l, nil
}

func (u *unpickler) memoOp(put bool, i int) error {
	if put {
		v, err := u.top()
		if err != nil {
			return err
		}
		u.memo[i] = v
		return nil
	}
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("memo entry %d was never stored", i)
	}
	u.push(v)
	return nil
}

func (d *pyDict) setItems(items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of dict items")
	}
	for i := 0; i < len(items); i += 2 {
		switch items[i].(type) {
		case string, pyBytes, int64, bool, nil:
		default:
			return fmt.Errorf("dict key of type %s", pyTypeName(items[i]))
		}
		d.keys = append(d.keys, items[i])
		d.vals = append(d.vals, items[i+1])
	}
	return nil
}

// The globals a NumPy array pickle refers to, under NumPy 1 and 2 module
// names, and Python 3's bytes-as-latin1 helper.
var allowedGlobals = map[string]string{
	"numpy.core.multiarray._reconstruct":  "_reconstruct",
	"numpy._core.multiarray._reconstruct": "_reconstruct",
	"numpy.ndarray":                       "ndarray",
	"numpy.dtype":                         "dtype",
	"numpy.core.numeric._frombuffer":      "_frombuffer",
	"numpy._core.numeric._frombuffer":     "_frombuffer",
	"_codecs.encode":                      "encode",
}

func global(module, name string) (pyGlobal, error) {
	g, ok := allowedGlobals[module+"."+name]
	if !ok {
		return pyGlobal{}, fmt.Errorf("refers to %q; a CIFAR-10 batch holds only dicts, lists, numbers, strings and NumPy uint8 arrays", clipText(module+"."+name))
	}
	return pyGlobal{module: module, name: g}, nil
}

// call applies an allowed global to its arguments.
func call(f any, args pyTuple) (any, error) {
	g, ok := f.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("REDUCE calls a %s", pyTypeName(f))
	}
	switch g.name {
	case "_reconstruct": // _reconstruct(ndarray, (0,), b'b'): an empty array BUILD fills
		if len(args) != 3 || args[0] != (pyGlobal{module: "numpy", name: "ndarray"}) {
			return nil, errors.New("_reconstruct does not make a numpy.ndarray")
		}
		return &pyArray{}, nil
	case "dtype": // dtype('u1', align, copy)
		if len(args) < 1 {
			return nil, errors.New("dtype without arguments")
		}
		s, ok := textOf(args[0])
		if !ok {
			return nil, fmt.Errorf("dtype of a %s", pyTypeName(args[0]))
		}
		return &pyDtype{str: s}, nil
	case "_frombuffer": // _frombuffer(buffer, dtype, shape, order)
		if len(args) != 4 {
			return nil, fmt.Errorf("_frombuffer with %d arguments", len(args))
		}
		a := &pyArray{}
		return a, a.set(args[2], args[1], args[0], args[3] == "F")
	case "encode": // _codecs.encode(str, 'latin1'): Python 3's protocol-2 bytes
		if len(args) != 2 {
			return nil, fmt.Errorf("_codecs.encode with %d arguments", len(args))
		}
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, errors.New("_codecs.encode is not a latin1 encoding of a string")
		}
		return latin1(s)
	}
	return nil, fmt.Errorf("%s.%s is not callable here", g.module, g.name)
}

// latin1 encodes s, whose characters must all be below 256.
func latin1(s string) (pyBytes, error) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 {
			return nil, fmt.Errorf("character U+%04X is not latin1", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// textOf returns a str or bytes value as a string.
func textOf(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case pyBytes:
		return string(v), true
	}
	return "", false
}

// build applies BUILD's state to an array or a dtype.
func build(obj, state any) error {
	switch o := obj.(type) {
	case *pyDtype:
		return nil // byte order and flags: irrelevant to a one-byte type
	case *pyArray:
		t, ok := state.(pyTuple)
		if !ok {
			return fmt.Errorf("array state is a %s", pyTypeName(state))
		}
		if len(t) == 5 { // (version, shape, dtype, is_fortran, data)
			t = t[1:]
		}
		if len(t) != 4 {
			return fmt.Errorf("array state of %d items", len(t))
		}
		fortran, _ := t[2].(bool)
		return o.set(t[0], t[1], t[3], fortran)
	}
	return fmt.Errorf("BUILD on a %s", pyTypeName(obj))
}

// set checks and stores an array's shape, dtype and contents: a uint8
// array whose element count is the data's length.
func (a *pyArray) set(shape, dtype, data any, fortran bool) error {
	dt, ok := dtype.(*pyDtype)
	if !ok {
		return fmt.Errorf("array dtype is a %s", pyTypeName(dtype))
	}
	if dt.str != "u1" && dt.str != "|u1" && dt.str != "uint8" {
		return fmt.Errorf("array of dtype %q; CIFAR-10 images are uint8", clipText(dt.str))
	}
	st, ok := shape.(pyTuple)
	if !ok {
		return fmt.Errorf("array shape is a %s", pyTypeName(shape))
	}
	var raw []byte
	switch d := data.(type) {
	case pyBytes:
		raw = d
	case string: // a Python 2 str read as text
		b, err := latin1(d)
		if err != nil {
			return err
		}
		raw = b
	default:
		return fmt.Errorf("array data is a %s", pyTypeName(data))
	}
	n := 1
	a.shape = make([]int, 0, len(st))
	for _, v := range st {
		d, ok := v.(int64)
		if !ok || d < 0 || d > int64(len(raw)) {
			return fmt.Errorf("array shape %v does not fit its %d bytes", st, len(raw))
		}
		if d != 0 && n > len(raw)/int(d) {
			return fmt.Errorf("array shape %v does not fit its %d bytes", st, len(raw))
		}
		n *= int(d)
		a.shape = append(a.shape, int(d))
	}
	if n != len(raw) {
		return fmt.Errorf("array shape %v holds %d values, its data %d bytes", st, n, len(raw))
	}
	if fortran && len(a.shape) > 1 {
		return errors.New("array in Fortran order")
	}
	a.dtype, a.data = dt, raw
	return nil
}

func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case pyBytes:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return "global"
	case *pyDtype:
		return "numpy.dtype"
	case *pyArray:
		return "numpy.ndarray"
	}
	return fmt.Sprintf("%T", v)
}

// clipText shortens text from a file for an error message.
func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
