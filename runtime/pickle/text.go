package pickle

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Protocol 0 writes strings as text: STRING holds a quoted Python 2 str
// literal, UNICODE raw-unicode-escape text. Both decode here as CPython's
// pickle module decodes them (codecs.escape_decode and the
// raw_unicode_escape codec).

// lineText decodes the argument of STRING (to Bytes) or UNICODE (to a
// string) and returns its length.
func lineText(op byte, b []byte) (any, int, error) {
	if op == 'S' {
		s, err := unquote(b)
		return s, len(s), err
	}
	s, err := rawUnicode(b)
	return s, len(s), err
}

// unquote decodes a STRING argument: a str literal in single or double
// quotes with backslash escapes.
func unquote(b []byte) (Bytes, error) {
	if len(b) < 2 || b[0] != b[len(b)-1] || (b[0] != '\'' && b[0] != '"') {
		return nil, errors.New("the STRING argument must be quoted")
	}
	b = b[1 : len(b)-1]
	out := make(Bytes, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(b) {
			return nil, errors.New("STRING ends in a backslash")
		}
		switch c = b[i]; c {
		case '\n': // a line continuation
		case '\\', '\'', '"':
			out = append(out, c)
		case 'a', 'b', 'f', 'n', 'r', 't', 'v':
			out = append(out, "\a\b\f\n\r\t\v"[strings.IndexByte("abfnrtv", c)])
		case '0', '1', '2', '3', '4', '5', '6', '7': // up to three octal digits
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(b[i]-'0')
			}
			out = append(out, byte(v)) // CPython keeps the low byte of \400 and above
		case 'x': // exactly two hex digits
			if i+2 >= len(b) {
				return nil, fmt.Errorf("invalid \\x escape at position %d of a STRING", i-1)
			}
			v, err := strconv.ParseUint(string(b[i+1:i+3]), 16, 8)
			if err != nil {
				return nil, fmt.Errorf("invalid \\x escape at position %d of a STRING", i-1)
			}
			out = append(out, byte(v))
			i += 2
		default: // an unknown escape stays as written
			out = append(out, '\\', c)
		}
	}
	return out, nil
}

// rawUnicode decodes a UNICODE argument: every byte is the character of
// that code (Latin-1), except \uXXXX and \UXXXXXXXX escapes after an odd
// number of backslashes.
func rawUnicode(b []byte) (string, error) {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			sb.WriteRune(rune(c))
			continue
		}
		// A run of backslashes: an escape follows only an odd run.
		j := i
		for j < len(b) && b[j] == '\\' {
			j++
		}
		run := j - i
		if run%2 == 0 || j == len(b) || (b[j] != 'u' && b[j] != 'U') {
			sb.WriteString(strings.Repeat("\\", run))
			i = j - 1
			continue
		}
		sb.WriteString(strings.Repeat("\\", run-1))
		digits := 4
		if b[j] == 'U' {
			digits = 8
		}
		if j+1+digits > len(b) {
			return "", fmt.Errorf("truncated \\%c escape at position %d of a UNICODE", b[j], j-1)
		}
		v, err := strconv.ParseUint(string(b[j+1:j+1+digits]), 16, 32)
		if err != nil || v > 0x10FFFF {
			return "", fmt.Errorf("invalid \\%c escape at position %d of a UNICODE", b[j], j-1)
		}
		sb.WriteRune(rune(v))
		i = j + digits
	}
	return sb.String(), nil
}

// bytesGlobal is a name protocols 0 to 2 use to rebuild bytes: Python 3
// has no opcode for them there, so it pickles b'...' as
// _codecs.encode('...', 'latin1'), b” as bytes(), and a bytearray as a
// call of bytearray on either.
type bytesGlobal string

var bytesGlobals = map[string]bytesGlobal{
	"_codecs.encode":        "encode",
	"__builtin__.bytes":     "bytes",
	"builtins.bytes":        "bytes",
	"__builtin__.bytearray": "bytearray",
	"builtins.bytearray":    "bytearray",
}

// call rebuilds the bytes: encode(str, 'latin1'), bytes() and
// bytearray() or bytearray(bytes).
func (f bytesGlobal) call(args Tuple) (Bytes, error) {
	if f == "encode" {
		if len(args) != 2 {
			return nil, fmt.Errorf("_codecs.encode with %d arguments", len(args))
		}
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, errors.New("_codecs.encode is not a latin1 encoding of a str")
		}
		b := make(Bytes, 0, len(s))
		for _, r := range s {
			if r > 255 {
				return nil, fmt.Errorf("character U+%04X is not latin1", r)
			}
			b = append(b, byte(r))
		}
		return b, nil
	}
	switch {
	case len(args) == 0:
		return Bytes{}, nil
	case len(args) == 1 && f == "bytearray":
		if b, ok := args[0].(Bytes); ok {
			return append(Bytes{}, b...), nil
		}
	}
	return nil, fmt.Errorf("%s with arguments other than bytes", string(f))
}
