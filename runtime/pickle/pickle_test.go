package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// testBudget is roomy for every valid pickle here.
var testBudget = Budget{Elements: 1 << 20, Bytes: 1 << 24}

// render prints a decoded value in a Python-like notation, so that
// tests compare values (big integers, nested containers) as text.
func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case *big.Int:
		return x.String() + "L"
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return strconv.Quote(x)
	case Bytes:
		return "b" + strconv.Quote(string(x))
	case Tuple:
		return "(" + renderAll(x) + ")"
	case *List:
		return "[" + renderAll(x.Items) + "]"
	case *Dict:
		parts := make([]string, len(x.Keys))
		for i := range x.Keys {
			parts[i] = render(x.Keys[i]) + ": " + render(x.Vals[i])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("%T", v)
}

func renderAll(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = render(v)
	}
	return strings.Join(parts, ", ")
}

// TestDecodeCPython decodes what CPython 3.12's pickle.dumps writes under
// every protocol for
//
//	{'a': [1, -2, 300, 70000, -70000, 2**40, -2**63, 2**70, -2**70, 1.5,
//	       float('inf'), None, True, False],
//	 'é\n\\€😀': (b'xy\x00', (), ('t',)), 3: {}, b'k': [[]]}
//
// Protocols 0 to 2 spell the bytes as _codecs.encode calls, 0 and 1 the
// big integers as LONG text, 0 the strings as raw-unicode-escape text.
func TestDecodeCPython(t *testing.T) {
	const want = `{"a": [1, -2, 300, 70000, -70000, 1099511627776, -9223372036854775808, 1180591620717411303424L, -1180591620717411303424L, 1.5, +Inf, None, True, False], "é\n\\€😀": (b"xy\x00", (), ("t")), 3: {}, b"k": [[]]}`
	for p, data := range cpythonPickles {
		t.Run("protocol "+strconv.Itoa(p), func(t *testing.T) {
			v, err := Decode([]byte(data), testBudget, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(v); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

var cpythonPickles = []string{
	"(dp0\nVa\np1\n(lp2\nI1\naI-2\naI300\naI70000\naI-70000\naL1099511627776L\naL-9223372036854775808L\naL1180591620717411303424L\naL-1180591620717411303424L\naF1.5\naFinf\naNaI01\naI00\nasV\xe9\\u000a\\u005c\\u20ac\\U0001f600\np3\n(c_codecs\nencode\np4\n(Vxy\\u0000\np5\nVlatin1\np6\ntp7\nRp8\n(t(Vt\np9\ntp10\ntp11\nsI3\n(dp12\nsg4\n(Vk\np13\ng6\ntp14\nRp15\n(lp16\n(lp17\nas.",
	"}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM,\x01Jp\x11\x01\x00J\x90\xee\xfe\xffL1099511627776L\nL-9223372036854775808L\nL1180591620717411303424L\nL-1180591620717411303424L\nG?\xf8\x00\x00\x00\x00\x00\x00G\x7f\xf0\x00\x00\x00\x00\x00\x00NI01\nI00\neX\x0b\x00\x00\x00\xc3\xa9\n\\\xe2\x82\xac\xf0\x9f\x98\x80q\x03(c_codecs\nencode\nq\x04(X\x03\x00\x00\x00xy\x00q\x05X\x06\x00\x00\x00latin1q\x06tq\x07Rq\x08)(X\x01\x00\x00\x00tq\ttq\ntq\x0bK\x03}q\x0ch\x04(X\x01\x00\x00\x00kq\x0dh\x06tq\x0eRq\x0f]q\x10]q\x11au.",
	"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM,\x01Jp\x11\x01\x00J\x90\xee\xfe\xff\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00\xc0G?\xf8\x00\x00\x00\x00\x00\x00G\x7f\xf0\x00\x00\x00\x00\x00\x00N\x88\x89eX\x0b\x00\x00\x00\xc3\xa9\n\\\xe2\x82\xac\xf0\x9f\x98\x80q\x03c_codecs\nencode\nq\x04X\x03\x00\x00\x00xy\x00q\x05X\x06\x00\x00\x00latin1q\x06\x86q\x07Rq\x08)X\x01\x00\x00\x00tq\t\x85q\n\x87q\x0bK\x03}q\x0ch\x04X\x01\x00\x00\x00kq\x0dh\x06\x86q\x0eRq\x0f]q\x10]q\x11au.",
	"\x80\x03}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM,\x01Jp\x11\x01\x00J\x90\xee\xfe\xff\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00\xc0G?\xf8\x00\x00\x00\x00\x00\x00G\x7f\xf0\x00\x00\x00\x00\x00\x00N\x88\x89eX\x0b\x00\x00\x00\xc3\xa9\n\\\xe2\x82\xac\xf0\x9f\x98\x80q\x03C\x03xy\x00q\x04)X\x01\x00\x00\x00tq\x05\x85q\x06\x87q\x07K\x03}q\x08C\x01kq\t]q\n]q\x0bau.",
	"\x80\x04\x95\x88\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01J\xfe\xff\xff\xffM,\x01Jp\x11\x01\x00J\x90\xee\xfe\xff\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00\xc0G?\xf8\x00\x00\x00\x00\x00\x00G\x7f\xf0\x00\x00\x00\x00\x00\x00N\x88\x89e\x8c\x0b\xc3\xa9\n\\\xe2\x82\xac\xf0\x9f\x98\x80\x94C\x03xy\x00\x94)\x8c\x01t\x94\x85\x94\x87\x94K\x03}\x94C\x01k\x94]\x94]\x94au.",
	"\x80\x05\x95\x88\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01J\xfe\xff\xff\xffM,\x01Jp\x11\x01\x00J\x90\xee\xfe\xff\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00\xc0G?\xf8\x00\x00\x00\x00\x00\x00G\x7f\xf0\x00\x00\x00\x00\x00\x00N\x88\x89e\x8c\x0b\xc3\xa9\n\\\xe2\x82\xac\xf0\x9f\x98\x80\x94C\x03xy\x00\x94)\x8c\x01t\x94\x85\x94\x87\x94K\x03}\x94C\x01k\x94]\x94]\x94au.",
}

// TestDecodeScalars covers the opcodes CPython 3 no longer writes
// (Python 2's STRING, and its INT and LONG spellings) and the edges of
// the number and string encodings, one value each.
func TestDecodeScalars(t *testing.T) {
	for _, tc := range []struct{ name, pickle, want string }{
		{"STRING single quotes", "S'a\\'b\\\\c\\x41\\101\\n'\n.", `b"a'b\\cAA\n"`},
		{"STRING double quotes, unknown escape", "S\"q\\z\"\n.", `b"q\\z"`},
		{"STRING octal past a byte", "S'\\400'\n.", `b"\x00"`},
		{"UNICODE latin1 byte", "V\xe9\n.", `"é"`},
		{"UNICODE even backslashes", "V\\\\u0041\n.", `"\\\\u0041"`},
		{"UNICODE odd backslashes", "V\\\\\\u0041\n.", `"\\\\A"`},
		{"INT bools", "(I01\nI00\nt.", `(True, False)`},
		{"INT beyond 64 bits", "I123456789012345678901234567890\n.", `123456789012345678901234567890L`},
		{"LONG without suffix", "L-5\n.", `-5`},
		{"FLOAT nan text", "Fnan\n.", `NaN`},
		{"FLOAT overflows to inf", "F1e999\n.", `+Inf`},
		{"LONG1 zero bytes", "\x80\x02\x8a\x00.", `0`},
		{"LONG1 negative", "\x80\x02\x8a\x02\x00\xff.", `-256`},
		{"LONG4 9 bytes", "\x80\x02\x8b\x09\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00\x01.", `18446744073709551616L`},
		{"BINBYTES8", "\x80\x04\x8e\x02\x00\x00\x00\x00\x00\x00\x00ab.", `b"ab"`},
		{"BINUNICODE8", "\x80\x04\x8d\x02\x00\x00\x00\x00\x00\x00\x00ab.", `"ab"`},
		{"bytes() in protocol 2", "\x80\x02c__builtin__\nbytes\nq\x00)Rq\x01.", `b""`},
		{"bytearray in protocol 3", "\x80\x03cbuiltins\nbytearray\nq\x00C\x02abq\x01\x85q\x02Rq\x03.", `b"ab"`},
		{"BYTEARRAY8", "\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00ab.", `b"ab"`},
		{"dict key set twice keeps both", "}(K\x01K\x02K\x01K\x03u.", `{1: 2, 1: 3}`},
		{"POP and POP_MARK", "(K\x02K\x031N0K\x04.", `4`},
		{"text memo", "K\x07p3\n0g3\n.", `7`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Decode([]byte(tc.pickle), testBudget, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(v); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	v, _ := Decode([]byte("\x80\x04}\x94(\x8c\x01k\x94K\x01C\x01kK\x02u."), testBudget, nil)
	if got, ok := v.(*Dict).Get("k"); !ok || got != int64(2) {
		t.Errorf("Get(k) = %v, %v; want the later of a str and a bytes key, 2", got, ok)
	}
}

// TestDecodeErrors gives one clear error per kind of broken or hostile
// pickle, never a panic or an allocation sized by a header.
func TestDecodeErrors(t *testing.T) {
	le32 := func(v uint32) string { return string(binary.LittleEndian.AppendUint32(nil, v)) }
	le64 := func(v uint64) string { return string(binary.LittleEndian.AppendUint64(nil, v)) }
	for _, tc := range []struct{ name, pickle, want string }{
		{"empty", "", "truncated (no STOP opcode)"},
		{"no STOP", "\x80\x02}", "truncated (no STOP opcode)"},
		{"two values at STOP", "K\x01K\x02.", "STOP at offset 4 with 2 values"},
		{"mark left at STOP", "(K\x01.", "1 marks"},
		{"huge BINUNICODE", "\x80\x02X" + le32(0xfffffff0) + "abc.", "opcode BINUNICODE at offset 2: string at offset 7 needs 4294967280 bytes, only 4 left"},
		{"huge BINBYTES8", "\x80\x04\x8e" + le64(1<<62) + ".", "needs 4611686018427387904 bytes"},
		{"huge frame", "\x80\x04\x95" + le64(1<<40) + "}.", "frame of 1099511627776 bytes"},
		{"huge LONG4", "\x80\x02\x8b" + le32(1<<30) + ".", "integer of 1073741824 bytes, more than 64"},
		{"short argument", "\x80\x02J\x01\x00", "argument at offset 3 needs 4 bytes, only 2 left"},
		{"long INT text", "I" + strings.Repeat("9", 2000) + "\n.", "text argument of 2000 bytes"},
		{"INT garbage", "Ixyz\n.", `integer "xyz"`},
		{"FLOAT garbage", "Fxyz\n.", `FLOAT "xyz"`},
		{"line without end", "I12", "no end of line"},
		{"protocol 6", "\x80\x06}.", "unsupported protocol 6"},
		{"unknown opcode", "\x80\x02\xff.", "unknown opcode 0xff at offset 2"},
		{"set", "\x80\x04\x8f.", "opcode EMPTY_SET at offset 2: builds a set"},
		{"global", "\x80\x02cos\nsystem\nU\x02idR.", `opcode GLOBAL at offset 2: refers to "os.system", which rebuilds a Python object`},
		{"stack global", "\x80\x04\x8c\x08builtins\x8c\x04eval\x93.", `opcode STACK_GLOBAL at offset 18: refers to "builtins.eval"`},
		{"stack global of numbers", "\x80\x04K\x01K\x02\x93.", "STACK_GLOBAL needs two strings"},
		{"REDUCE of a list", "\x80\x02])R.", "REDUCE calls a list"},
		{"REDUCE without a tuple", "\x80\x02c_codecs\nencode\nK\x01R.", "REDUCE arguments are a int"},
		{"encode not latin1", "\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00utf-8\x86R.", "not a latin1 encoding"},
		{"encode past latin1", "\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xe2\x82\xacX\x06\x00\x00\x00latin1\x86R.", "U+20AC is not latin1"},
		{"bytes of a number", "\x80\x02c__builtin__\nbytes\nK\x01\x85R.", "bytes with arguments other than bytes"},
		{"BUILD", "\x80\x02}}b.", "opcode BUILD at offset 4: rebuilds a Python object"},
		{"NEWOBJ", "\x80\x02))\x81.", "opcode NEWOBJ at offset 4: rebuilds"},
		{"persistent id", "\x80\x02K\x01Q.", "BINPERSID"},
		{"stack underflow", "\x80\x02s.", "opcode SETITEM at offset 2: stack underflow"},
		{"pop below a mark", "K\x01(0.", "stack underflow"},
		{"no MARK", "\x80\x02e.", "no MARK on the stack"},
		{"never stored", "\x80\x02h\x05.", "memo entry 5 was never stored"},
		{"bad memo index", "K\x01p-1\n.", `memo index "-1"`},
		{"APPEND to a dict", "}K\x01a.", "APPEND to a dict"},
		{"SETITEM on a list", "]K\x01K\x02s.", "SETITEM on a list"},
		{"odd dict", "(K\x01d.", "odd number of dict items"},
		{"list key", "}]K\x01s.", "dict key of type list"},
		{"BINUNICODE not UTF-8", "X\x01\x00\x00\x00\xff.", "not UTF-8"},
		{"STRING unquoted", "Sabc\n.", "must be quoted"},
		{"STRING trailing backslash", "S'a\\'\n.", "ends in a backslash"},
		{"STRING bad hex", "S'\\xg0'\n.", `invalid \x escape`},
		{"STRING short hex", "S'\\x4'\n.", `invalid \x escape`},
		{"UNICODE short escape", "V\\u12\n.", `truncated \u escape`},
		{"UNICODE past the last code point", "V\\U00110000\n.", `invalid \U escape`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.pickle), testBudget, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestTruncated decodes every prefix of valid pickles: each is an error.
func TestTruncated(t *testing.T) {
	for p, data := range cpythonPickles {
		for n := range len(data) {
			if _, err := Decode([]byte(data[:n]), testBudget, nil); err == nil {
				t.Fatalf("protocol %d truncated to %d of %d bytes: no error", p, n, len(data))
			}
		}
	}
}

// TestStructureErrors refuses values plain data never is: a list that
// holds itself, and nesting deeper than CPython can write.
func TestStructureErrors(t *testing.T) {
	deep := strings.Repeat("]", maxDepth+1) + strings.Repeat("a", maxDepth) + "."
	for _, tc := range []struct{ name, pickle, want string }{
		{"list in itself", "]\x942a.", "contains itself"},
		{"list in itself through a tuple", "]\x94h\x00\x85a.", "contains itself"},
		{"dict in itself", "}\x94K\x01h\x00s.", "contains itself"},
		{"too deep", deep, "nested more than 1000 deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.pickle), testBudget, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// 1000 levels, as deep as CPython writes, decode.
	ok := strings.Repeat("]", maxDepth) + strings.Repeat("a", maxDepth-1) + "."
	if _, err := Decode([]byte(ok), testBudget, nil); err != nil {
		t.Errorf("%d levels: %v", maxDepth, err)
	}
}

// bomb builds a protocol-4 pickle of at most size bytes whose value
// reuses one memoized value, made by inner, many times: each reference
// is a BINGET and an APPEND (or, in a dict, a key and a SETITEM).
func bomb(size int, inner string, asDict bool) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x04")
	b.WriteString(inner)
	b.WriteString("\x94") // MEMOIZE as 0
	b.WriteString("0")    // POP: only the memo keeps it
	if asDict {
		b.WriteString("}")
	} else {
		b.WriteString("]")
	}
	for k := 0; b.Len() < size-8; k++ {
		if asDict {
			b.WriteString("J")
			b.Write(binary.LittleEndian.AppendUint32(nil, uint32(k)))
			b.WriteString("h\x00s")
		} else {
			b.WriteString("h\x00a")
		}
	}
	b.WriteString(".")
	return b.Bytes()
}

// bigList is a list of n small ints.
func bigList(n int) string {
	return "](" + strings.Repeat("K\x07", n) + "e"
}

// TestBudget decodes pickles of about 2 MB that reuse one value through
// the memo hundreds of thousands of times: a reader of the result would
// walk (or copy) gigabytes. Each fails fast, with an error naming the
// budget, having allocated little more than the input.
func TestBudget(t *testing.T) {
	const size = 2 << 20
	traceLike := Budget{Elements: 1 << 25, Bytes: 1 << 30}
	longString := "\x8d" + string(binary.LittleEndian.AppendUint64(nil, 1<<20)) + strings.Repeat("x", 1<<20)
	// Each level is a pair of the previous one: 2^31 elements from 30 levels.
	doubling := "\x80\x04K\x01\x94"
	for i := range 30 {
		doubling += "0h" + string(byte(i)) + "h" + string(byte(i)) + "\x86\x94"
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		limit Budget
		want  string
	}{
		{"list in a list", bomb(size, bigList(1000), false), traceLike, "more than 33554432 elements"},
		{"list as dict values", bomb(size, bigList(1000), true), traceLike, "more than 33554432 elements"},
		{"string in a list", bomb(size, longString, false), traceLike, "more than 1073741824 bytes"},
		{"doubling tuples", []byte(doubling + "."), traceLike, "more than 33554432 elements"},
		{"values pushed", []byte("\x80\x02N" + strings.Repeat("2", 1000) + "."), Budget{Elements: 999, Bytes: 1}, "more than 999 values pushed or memoized by offset"},
		{"memo entries", []byte("\x80\x02N" + strings.Repeat("\x94", 11) + "."), Budget{Elements: 10, Bytes: 1}, "more than 10 values"},
		{"marks", []byte("\x80\x02" + strings.Repeat("(", 11) + "."), Budget{Elements: 10, Bytes: 1}, "more than 10 values"},
		{"strings copied", []byte("(" + strings.Repeat("X\x04\x00\x00\x00abcd", 3) + "t."), Budget{Elements: 100, Bytes: 11}, "more than 11 bytes of strings decoded"},
		{"bytes held", []byte("(" + strings.Repeat("C\x04abcd", 3) + "t."), Budget{Elements: 100, Bytes: 11}, "more than 11 bytes of strings, counting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decode(tc.data, tc.limit, nil)
			runtime.ReadMemStats(&after)
			if err == nil || !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrBudget containing %q", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MB decoding %d bytes", alloc>>20, len(tc.data))
			}
		})
	}
	// The same shapes within budget decode: sharing is not an error.
	small := bomb(4096, bigList(10), true)
	v, err := Decode(small, Budget{Elements: 1 << 20, Bytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := v.(*Dict); len(d.Vals) < 100 || d.Vals[0] != d.Vals[len(d.Vals)-1] {
		t.Errorf("want one list shared by every entry, got %d entries", len(d.Vals))
	}
}

// TestBudgetFits checks the accounting against a count made by hand:
// {'k': [1, 'ab'], 'j': <the same list>} holds 1 dict + 2 keys + 2 x (1
// list + 2 items) = 9 elements and 'k', 'j' and twice 'ab': 6 bytes.
func TestBudgetFits(t *testing.T) {
	data := []byte("\x80\x04}(\x8c\x01k](K\x01\x8c\x02abe\x94\x8c\x01jh\x00u.")
	for _, tc := range []struct {
		b  Budget
		ok bool
	}{
		{Budget{Elements: 9, Bytes: 6}, true},
		{Budget{Elements: 8, Bytes: 6}, false},
		{Budget{Elements: 9, Bytes: 5}, false},
	} {
		_, err := Decode(data, tc.b, nil)
		if (err == nil) != tc.ok {
			t.Errorf("budget %+v: error %v", tc.b, err)
		}
	}
}

// ordered is an Objects that rebuilds collections.OrderedDict, as a
// caller that accepts one Python class would: a REDUCE of the class with
// no arguments makes an empty dict that SETITEMS then fills.
type ordered struct{}

func (ordered) Global(module, name string) (any, error) {
	if module+"."+name != "collections.OrderedDict" {
		return nil, fmt.Errorf("refers to %s.%s", module, name)
	}
	return ordered{}, nil
}

func (ordered) Call(f any, args Tuple) (any, error) {
	if _, ok := f.(ordered); !ok || len(args) != 0 {
		return nil, errors.New("not OrderedDict()")
	}
	return &Dict{}, nil
}

func (ordered) Build(obj, state any) error { return errors.New("no BUILD") }

// TestObjects decodes CPython's pickle of OrderedDict([('a', 1)]) under
// protocols 2 and 4 through an Objects; other names reach it too.
func TestObjects(t *testing.T) {
	for _, data := range []string{
		"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00aq\x02K\x01s.",
		"\x80\x04\x95)\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94\x8c\x01a\x94K\x01s.",
	} {
		v, err := Decode([]byte(data), testBudget, ordered{})
		if err != nil {
			t.Fatal(err)
		}
		if got := render(v); got != `{"a": 1}` {
			t.Errorf("got %s", got)
		}
	}
	_, err := Decode([]byte("\x80\x02cos\nsystem\n."), testBudget, ordered{})
	if err == nil || !strings.Contains(err.Error(), "refers to os.system") {
		t.Errorf("a name Objects refuses: %v", err)
	}
	// The bytes names stay the package's own.
	v, err := Decode([]byte("\x80\x02c__builtin__\nbytes\n)R."), testBudget, ordered{})
	if err != nil || render(v) != `b""` {
		t.Errorf("bytes() with Objects: %v, %v", render(v), err)
	}
}

// FuzzDecode runs the decoder on anything: it must return a value or an
// error, never panic, and never return a value over its budget.
func FuzzDecode(f *testing.F) {
	for _, p := range cpythonPickles {
		f.Add([]byte(p))
	}
	for _, s := range []string{
		"", "\x80", "\x80\x02.", "(K\x01d.", "]\x942a.", "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f",
		"S'a\\x41'\n.", "V\\u0041\n.", "I01\n.", "\x80\x02c__builtin__\nbytes\n)R.",
		string(bomb(512, bigList(8), true)),
	} {
		f.Add([]byte(s))
	}
	budget := Budget{Elements: 1 << 12, Bytes: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data, budget, nil)
		if err != nil {
			if v != nil {
				t.Fatal("a value with an error")
			}
			return
		}
		s := sizer{shared: map[any]bool{}, seen: map[any]size{}}
		sz, err := s.size(v, 0)
		if err != nil || sz.elements > budget.Elements || sz.bytes > budget.Bytes {
			t.Fatalf("accepted a value of %+v (%v), over %+v", sz, err, budget)
		}
		if again, _ := Decode(data, budget, nil); render(again) != render(v) {
			t.Fatal("two decodes differ")
		}
	})
}
