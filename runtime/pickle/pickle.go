// Package pickle decodes Python pickles of plain data: the files FedScale
// users already have, torchvision's CIFAR-10 batches (package data) and
// FedScale's device traces (package trace). It runs the pickle machine
// for protocols 0 to 5 and never runs Python: the opcodes that rebuild
// objects by name (GLOBAL, STACK_GLOBAL, REDUCE, BUILD) reach only what
// the caller's Objects models, and every other opcode that is not plain
// data (sets, persistent ids, extensions, out-of-band buffers, INST, OBJ,
// NEWOBJ) is an error.
//
// Every size is bounded before it is used. An argument never exceeds the
// bytes that remain (strings and bytes are slices of the input, not
// copies sized by a header), numbers written out in full are short, and
// the whole decode runs under a Budget of elements and bytes. The budget
// counts the decoded value the way its reader will see it: a value
// reachable from several places (one list memoized and fetched back into
// many dict entries) counts once per place, so a small pickle cannot
// expand into gigabytes in the code that walks the result.
//
// Decoded values are nil (None), bool, int64, *big.Int (an int beyond 64
// bits), float64, string (str), Bytes (bytes, bytearray and Python 2
// str), Tuple, *List and *Dict, plus whatever the caller's Objects
// return.
package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// Python values without a Go type of their own.
type (
	// Bytes is a Python bytes or bytearray, or a Python 2 str (read
	// untouched, as pickle.load(encoding='bytes') does).
	Bytes []byte
	// Tuple is a Python tuple.
	Tuple []any
	// List is a Python list. It is a pointer type because a list can
	// grow after it was stored elsewhere (APPEND on a memoized list).
	List struct{ Items []any }
	// Dict is a Python dict in insertion order. A key set twice appears
	// twice, the later entry winning for Get as in Python.
	Dict struct{ Keys, Vals []any }
)

// Get returns the value stored under key, a str or bytes key.
func (d *Dict) Get(key string) (any, bool) {
	for i := len(d.Keys) - 1; i >= 0; i-- {
		if k, ok := Text(d.Keys[i]); ok && k == key {
			return d.Vals[i], true
		}
	}
	return nil, false
}

// Text returns a str or bytes value as a string.
func Text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case Bytes:
		return string(v), true
	}
	return "", false
}

// Items returns the items of a list or a tuple.
func Items(v any) ([]any, bool) {
	switch x := v.(type) {
	case *List:
		return x.Items, true
	case Tuple:
		return x, true
	}
	return nil, false
}

// Objects rebuilds the Python objects a pickle names. With no Objects,
// Decode refuses the opcodes that would reach it. The budget does not see
// what its methods allocate, so they must not copy their arguments.
type Objects interface {
	// Global returns what module.name stands for (GLOBAL, STACK_GLOBAL);
	// its error refuses a name.
	Global(module, name string) (any, error)
	// Call applies f, a value Global returned, to args (REDUCE).
	Call(f any, args Tuple) (any, error)
	// Build applies state to obj (BUILD).
	Build(obj, state any) error
}

// Budget bounds one decode. Both limits apply twice: while decoding, to
// the values pushed, memoized and marked (Elements) and to the strings
// copied out of the input (Bytes); and to the decoded value, counting
// every element and every string's bytes once per place the value holds
// them.
type Budget struct {
	Elements int64
	Bytes    int64
}

// ErrBudget is wrapped by the error of a pickle that exceeds its Budget.
var ErrBudget = errors.New("exceeds the decoding budget")

// Limits on numbers written out in full. Numbers a pickle of data holds
// fit in far less; these only keep big-integer parsing (quadratic) short.
const (
	maxIntBytes = 64   // LONG1/LONG4 payload
	maxTextArg  = 1024 // INT/LONG/FLOAT text, memo indices, GLOBAL names
	// maxDepth bounds how deeply containers nest. CPython's pickler
	// cannot write deeper structures (it recurses once per level, up to
	// its recursion limit of 1000), so a deeper one is hostile.
	maxDepth = 1000
)

// Decode decodes one pickle from data under budget b. objs may be nil.
func Decode(data []byte, b Budget, objs Objects) (any, error) {
	u := unpickler{data: data, memo: map[int]any{}, shared: map[any]bool{}, budget: b, objs: objs}
	v, err := u.run()
	if err != nil {
		return nil, err
	}
	s := sizer{shared: u.shared, seen: map[any]size{}}
	sz, err := s.size(v, 0)
	if err != nil {
		return nil, fmt.Errorf("invalid pickle: %w", err)
	}
	switch {
	case sz.elements > b.Elements:
		return nil, fmt.Errorf("pickle %w: its value holds more than %d elements, counting a value once per place it is referenced (memo references can reuse one list many times)", ErrBudget, b.Elements)
	case sz.bytes > b.Bytes:
		return nil, fmt.Errorf("pickle %w: its value holds more than %d bytes of strings, counting a string once per place it is referenced (memo references can reuse one value many times)", ErrBudget, b.Bytes)
	}
	return v, nil
}

type unpickler struct {
	data   []byte
	pos    int
	stack  []any
	marks  []int // stack heights at each MARK
	memo   map[int]any
	shared map[any]bool // containers pushed more than once (see identity)
	objs   Objects
	budget Budget
	pushes int64 // values pushed and marks set so far
	copied int64 // string bytes copied out of the input so far
}

// Errors of step that run formats specially.
var (
	errStop    = errors.New("stop")
	errUnknown = errors.New("unknown opcode")
)

func (u *unpickler) run() (any, error) {
	for u.pos < len(u.data) {
		at := u.pos
		op := u.data[u.pos]
		u.pos++
		err := u.step(op)
		switch {
		case err == nil:
			if u.pushes > u.budget.Elements || int64(len(u.memo)) > u.budget.Elements {
				return nil, fmt.Errorf("pickle %w: more than %d values pushed or memoized by offset %d", ErrBudget, u.budget.Elements, at)
			}
			if u.copied > u.budget.Bytes {
				return nil, fmt.Errorf("pickle %w: more than %d bytes of strings decoded by offset %d", ErrBudget, u.budget.Bytes, at)
			}
		case err == errStop:
			if len(u.stack) != 1 || len(u.marks) != 0 {
				return nil, fmt.Errorf("invalid pickle: STOP at offset %d with %d values and %d marks on the stack", at, len(u.stack), len(u.marks))
			}
			return u.stack[0], nil
		case err == errUnknown:
			return nil, fmt.Errorf("invalid pickle: unknown opcode 0x%02x at offset %d: not allowed in a pickle of data", op, at)
		default:
			return nil, fmt.Errorf("invalid pickle: opcode %s at offset %d: %w", opName(op), at, err)
		}
	}
	return nil, errors.New("invalid pickle: truncated (no STOP opcode)")
}

func (u *unpickler) take(n uint64, what string) ([]byte, error) {
	if left := uint64(len(u.data) - u.pos); n > left {
		return nil, fmt.Errorf("%s at offset %d needs %d bytes, only %d left", what, u.pos, n, left)
	}
	b := u.data[u.pos : u.pos+int(n) : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

// line returns a newline-terminated text argument, at most limit bytes
// long when limit is positive.
func (u *unpickler) line(limit int) ([]byte, error) {
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return nil, fmt.Errorf("text argument at offset %d has no end of line", u.pos)
	}
	if limit > 0 && i > limit {
		return nil, fmt.Errorf("text argument of %d bytes at offset %d, more than %d", i, u.pos, limit)
	}
	b := u.data[u.pos : u.pos+i : u.pos+i]
	u.pos += i + 1
	return b, nil
}

// uint reads an n-byte little-endian unsigned argument.
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

// pushAgain pushes a value that is already somewhere else (on the stack,
// in the memo, or handed to Objects), noting a container as shared: only
// a shared container can be reached twice, or contain itself.
func (u *unpickler) pushAgain(v any) {
	if k, ok := identity(v); ok {
		u.shared[k] = true
	}
	u.push(v)
}

// floor is the lowest stack index the current mark leaves poppable.
func (u *unpickler) floor() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

// popN removes and returns the top n values, oldest first.
func (u *unpickler) popN(n int) ([]any, error) {
	if len(u.stack)-n < u.floor() {
		return nil, errors.New("stack underflow")
	}
	vs := append([]any(nil), u.stack[len(u.stack)-n:]...)
	u.stack = u.stack[:len(u.stack)-n]
	return vs, nil
}

func (u *unpickler) pop() (any, error) {
	v, err := u.top()
	if err == nil {
		u.stack = u.stack[:len(u.stack)-1]
	}
	return v, err
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.floor() {
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
		if left := uint64(len(u.data) - u.pos); n > left {
			return fmt.Errorf("frame of %d bytes, only %d left", n, left)
		}
	case '(': // MARK
		// A mark counts as a value, or a file of MARKs alone would grow
		// the mark stack without bound.
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
		u.pushAgain(v)
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'I', 'L', 'F', 'J', 'K', 'M', 0x8a, 0x8b, 'G':
		return u.number(op)
	case 'S', 'V', 'U', 'C', 'T', 'B', 0x8e, 0x96, 0x8c, 'X', 0x8d:
		return u.text(op)
	case ']':
		u.push(&List{})
	case ')':
		u.push(Tuple{})
	case '}':
		u.push(&Dict{})
	case 'l', 't', 'd': // LIST TUPLE DICT from the marked items
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.collection(op, items)
	case 0x85, 0x86, 0x87: // TUPLE1..3
		t, err := u.popN(int(op - 0x84))
		if err != nil {
			return err
		}
		u.push(Tuple(t))
	case 'a', 'e', 's', 'u': // APPEND APPENDS SETITEM SETITEMS
		return u.add(op)
	case 'p', 'g': // PUT GET: decimal text index
		b, err := u.line(maxTextArg)
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(string(b))
		if err != nil || i < 0 {
			return fmt.Errorf("memo index %q", b)
		}
		return u.memoOp(op == 'p', i)
	case 'q', 'h', 'r', 'j': // BINPUT BINGET LONG_BINPUT LONG_BINGET
		size := 1
		if op == 'r' || op == 'j' {
			size = 4
		}
		i, err := u.uint(size)
		if err != nil {
			return err
		}
		return u.memoOp(op == 'q' || op == 'r', int(i))
	case 0x94: // MEMOIZE
		v, err := u.top()
		if err != nil {
			return err
		}
		u.memo[len(u.memo)] = v
	case 'c', 0x93: // GLOBAL STACK_GLOBAL
		return u.global(op)
	case 'R': // REDUCE
		return u.reduce()
	case 'b': // BUILD
		if u.objs == nil {
			return errObject
		}
		state, err := u.pop()
		if err != nil {
			return err
		}
		obj, err := u.top()
		if err != nil {
			return err
		}
		return u.objs.Build(obj, state)
	case 'i', 'o', 0x81, 0x92, 'P', 'Q', 0x82, 0x83, 0x84, 0x97, 0x98:
		return errObject
	case 0x8f, 0x90, 0x91: // EMPTY_SET ADDITEMS FROZENSET
		return errors.New("builds a set; only dicts, lists, tuples, numbers and strings are allowed")
	default:
		return errUnknown
	}
	return nil
}

var errObject = errors.New("rebuilds a Python object; only dicts, lists, tuples, numbers, strings and bytes are allowed")

// number decodes the integer and float opcodes.
func (u *unpickler) number(op byte) error {
	switch op {
	case 'I', 'L': // INT LONG: decimal text, LONG with an L suffix; I00/I01 are False/True
		b, err := u.line(maxTextArg)
		if err != nil {
			return err
		}
		if op == 'I' && (string(b) == "00" || string(b) == "01") {
			u.push(b[1] == '1')
			return nil
		}
		if op == 'L' {
			b = bytes.TrimSuffix(b, []byte("L"))
		}
		if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			u.push(v)
			return nil
		}
		v, ok := new(big.Int).SetString(string(b), 10)
		if !ok {
			return fmt.Errorf("integer %.64q", b)
		}
		u.push(v)
	case 'J': // BININT
		v, err := u.uint(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(uint32(v))))
	case 'K', 'M': // BININT1 BININT2
		size := 1
		if op == 'M' {
			size = 2
		}
		v, err := u.uint(size)
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
		if n > maxIntBytes {
			return fmt.Errorf("integer of %d bytes, more than %d", n, maxIntBytes)
		}
		b, err := u.take(n, "integer")
		if err != nil {
			return err
		}
		u.push(littleInt(b))
	case 'F': // FLOAT: text
		b, err := u.line(maxTextArg)
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("FLOAT %.64q", b)
		}
		u.push(v)
	case 'G': // BINFLOAT: big-endian double
		b, err := u.take(8, "argument")
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	}
	return nil
}

// littleInt decodes a little-endian two's-complement integer: an int64
// when it fits, a *big.Int otherwise.
func littleInt(b []byte) any {
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		if n := len(b); n > 0 && n < 8 && b[n-1]&0x80 != 0 {
			v |= ^uint64(0) << (8 * n) // sign-extend
		}
		return int64(v)
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

// text decodes the string opcodes.
func (u *unpickler) text(op byte) error {
	switch op {
	case 'S', 'V': // STRING: a quoted Python 2 str literal; UNICODE: raw-unicode-escape text
		b, err := u.line(0)
		if err != nil {
			return err
		}
		v, n, err := lineText(op, b)
		if err != nil {
			return err
		}
		u.copied += int64(n)
		u.push(v)
		return nil
	}
	var lenBytes int
	switch op {
	case 'U', 'C', 0x8c: // SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE
		lenBytes = 1
	case 'T', 'B', 'X': // BINSTRING BINBYTES BINUNICODE
		lenBytes = 4
	default: // BINBYTES8 BYTEARRAY8 BINUNICODE8
		lenBytes = 8
	}
	n, err := u.uint(lenBytes)
	if err != nil {
		return err
	}
	b, err := u.take(n, "string")
	if err != nil {
		return err
	}
	if op != 0x8c && op != 'X' && op != 0x8d {
		u.push(Bytes(b))
		return nil
	}
	if !utf8.Valid(b) {
		return errors.New("string is not UTF-8")
	}
	u.copied += int64(len(b))
	u.push(string(b))
	return nil
}

func (u *unpickler) collection(op byte, items []any) error {
	switch op {
	case 'l':
		u.push(&List{Items: items})
	case 't':
		u.push(Tuple(items))
	default:
		d := &Dict{}
		if err := d.set(items); err != nil {
			return err
		}
		u.push(d)
	}
	return nil
}

// add runs APPEND, APPENDS, SETITEM and SETITEMS: items go into the
// list or dict below them.
func (u *unpickler) add(op byte) error {
	// The items stay on the stack until they are copied into the list or
	// dict, so that the commonest opcodes allocate nothing of their own.
	from := len(u.stack) - 1 // APPEND: one value
	switch op {
	case 's':
		from-- // a key and its value
	case 'e', 'u':
		if len(u.marks) == 0 {
			return errors.New("no MARK on the stack")
		}
		from = u.marks[len(u.marks)-1]
		u.marks = u.marks[:len(u.marks)-1]
	}
	if from < u.floor() {
		return errors.New("stack underflow")
	}
	items := u.stack[from:]
	u.stack = u.stack[:from]
	t, err := u.top()
	if err != nil {
		return err
	}
	if op == 'a' || op == 'e' {
		l, ok := t.(*List)
		if !ok {
			return fmt.Errorf("APPEND to a %s", TypeName(t))
		}
		l.Items = append(l.Items, items...)
		return nil
	}
	d, ok := t.(*Dict)
	if !ok {
		return fmt.Errorf("SETITEM on a %s", TypeName(t))
	}
	return d.set(items)
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
	u.pushAgain(v)
	return nil
}

// global runs GLOBAL and STACK_GLOBAL: one of the names Python gives
// bytes (see bytesGlobals), or whatever u.objs makes of the name.
func (u *unpickler) global(op byte) error {
	var m, n string
	if op == 'c' {
		mb, err := u.line(maxTextArg)
		if err != nil {
			return err
		}
		nb, err := u.line(maxTextArg)
		if err != nil {
			return err
		}
		m, n = string(mb), string(nb)
	} else {
		mn, err := u.popN(2)
		if err != nil {
			return err
		}
		var ok1, ok2 bool
		m, ok1 = mn[0].(string)
		n, ok2 = mn[1].(string)
		if !ok1 || !ok2 {
			return errors.New("STACK_GLOBAL needs two strings")
		}
	}
	if f, ok := bytesGlobals[m+"."+n]; ok {
		u.push(f)
		return nil
	}
	if u.objs == nil {
		return fmt.Errorf("refers to %.64q, which %w", m+"."+n, errObject)
	}
	g, err := u.objs.Global(m, n)
	if err != nil {
		return err
	}
	u.push(g)
	return nil
}

// reduce runs REDUCE: a call of a bytes global, or of something u.objs
// made.
func (u *unpickler) reduce() error {
	fa, err := u.popN(2)
	if err != nil {
		return err
	}
	args, ok := fa[1].(Tuple)
	if !ok {
		return fmt.Errorf("REDUCE arguments are a %s, not a tuple", TypeName(fa[1]))
	}
	if f, ok := fa[0].(bytesGlobal); ok {
		b, err := f.call(args)
		if err != nil {
			return err
		}
		u.copied += int64(len(b))
		u.push(b)
		return nil
	}
	if u.objs == nil {
		return fmt.Errorf("REDUCE calls a %s", TypeName(fa[0]))
	}
	v, err := u.objs.Call(fa[0], args)
	if err != nil {
		return err
	}
	u.pushAgain(v) // which may be one of its arguments
	return nil
}

// set appends key, value pairs.
func (d *Dict) set(items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of dict items")
	}
	for i := 0; i < len(items); i += 2 {
		switch items[i].(type) {
		case nil, bool, int64, *big.Int, float64, string, Bytes:
		default:
			return fmt.Errorf("dict key of type %s", TypeName(items[i]))
		}
		d.Keys = append(d.Keys, items[i])
		d.Vals = append(d.Vals, items[i+1])
	}
	return nil
}

// TypeName names a decoded value's type the way Python would.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case Bytes:
		return "bytes"
	case Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}
