package config

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The coercions below turn one YAML value into a typed Go value. Command-line
// overrides (Conf.Set) go through the same functions as a !!str scalar, so a
// flag and a file accept exactly the same spellings.

// strNode wraps a command-line value as a YAML string scalar.
func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// resolve follows aliases to the anchored node. The bound guards against
// alias chains the parser might let through; a nil or unresolvable node
// reads as null so callers never dereference nil.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 32; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		line := 0
		if n != nil {
			line = n.Line
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe renders a value for error messages: strings quoted, other
// scalars as written, collections by kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return strconv.Quote(clip(n.Value))
		}
		return clip(n.Value)
	}
	return "an unsupported YAML value"
}

// clip shortens s for messages so a huge value cannot flood the output.
func clip(s string) string {
	const max = 60
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "..."
}

func expected(what string, n *yaml.Node) error {
	return fmt.Errorf("expected %s, got %s", what, describe(n))
}

// toInt64 accepts YAML ints, floats with an integral value (FedScale writes
// filter_more as 1e15) and strings that parse as either.
func toInt64(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, expected("an integer", n)
	}
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if n.Decode(&v) == nil {
			return v, nil
		}
		// Too large for int64: the float path reports it.
		var f float64
		if n.Decode(&f) == nil {
			return intFromFloat(f, n)
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return intFromFloat(f, n)
		}
	case "!!null", "!!bool":
	default:
		s := strings.TrimSpace(n.Value)
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v, nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return intFromFloat(f, n)
		}
	}
	return 0, expected("an integer", n)
}

func intFromFloat(f float64, n *yaml.Node) (int64, error) {
	// 2^63 is exactly representable; anything at or above it overflows.
	if math.IsNaN(f) || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, expected("an integer", n)
	}
	return int64(f), nil
}

func toInt(n *yaml.Node) (int, error) {
	v, err := toInt64(n)
	if err != nil {
		return 0, err
	}
	if int64(int(v)) != v {
		return 0, fmt.Errorf("expected an integer, got %s (out of range)", describe(n))
	}
	return int(v), nil
}

// toFloat accepts YAML ints and floats and numeric strings ("5e-5"); NaN and
// infinities are rejected because no flag has a use for them.
func toFloat(n *yaml.Node) (float64, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, expected("a number", n)
	}
	var f float64
	var err error
	switch n.ShortTag() {
	case "!!int", "!!float":
		err = n.Decode(&f)
	case "!!null", "!!bool":
		return 0, expected("a number", n)
	default:
		f, err = strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
	}
	if err != nil {
		return 0, expected("a number", n)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, expected("a finite number", n)
	}
	return f, nil
}

// toBool reads the spellings users write, Python's included. The original
// turned the string "False" into true; here it is false.
func toBool(n *yaml.Node) (bool, error) {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
	}
	return false, expected("true or false", n)
}

// toString accepts any scalar as written; null is "".
func toString(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", expected("a string", n)
	}
	if isNull(n) {
		return "", nil
	}
	return n.Value, nil
}

func toPath(n *yaml.Node) (string, error) {
	s, err := toString(n)
	if err != nil {
		return "", err
	}
	return ExpandPath(s), nil
}

// toOptionalPath is toPath where "none"/"None"/empty mean unset, as the
// original writes for data_map_file and the trace files.
func toOptionalPath(n *yaml.Node) (string, error) {
	s, err := toString(n)
	if err != nil {
		return "", err
	}
	if isNone(s) {
		return "", nil
	}
	return ExpandPath(s), nil
}

func isNone(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || strings.EqualFold(s, "none")
}

// ExpandPath expands $VAR and ${VAR} (an unset variable is left as written,
// like Python's os.path.expandvars) and then a leading ~ to $HOME.
func ExpandPath(s string) string {
	s = expandVars(s)
	if s == "~" || strings.HasPrefix(s, "~/") {
		if home, err := os.UserHomeDir(); err == nil && home != "" {
			s = home + s[1:]
		}
	}
	return s
}

// expandVars is os.path.expandvars. os.Expand cannot stand in for it: it
// gives no way to leave an unset ${VAR} as written, and it drops an
// unclosed "${" (TestExpandVarsNotOSExpand).
func expandVars(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			if end := strings.IndexByte(s[i+2:], '}'); end > 0 {
				if v, ok := os.LookupEnv(s[i+2 : i+2+end]); ok {
					b.WriteString(v)
					i += end + 3
					continue
				}
			}
		} else {
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j > i+1 {
				if v, ok := os.LookupEnv(s[i+1 : j]); ok {
					b.WriteString(v)
					i = j
					continue
				}
			}
		}
		// Not a set variable: keep the '$' and let the rest copy through.
		b.WriteByte('$')
		i++
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
