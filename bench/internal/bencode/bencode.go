// Package bencode encodes and decodes the bencoding used by rtpengine's ng
// control protocol: byte strings ("4:spam"), integers ("i42e"), lists
// ("l...e") and dictionaries ("d...e", keys are byte strings in sorted order).
//
// Decoded values are string, int64, []any and map[string]any.
package bencode

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

var (
	// ErrSyntax reports malformed input.
	ErrSyntax = errors.New("bencode: syntax error")
	// ErrType reports a Go value that has no bencoding.
	ErrType = errors.New("bencode: unsupported type")
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// Marshal returns the bencoding of v. Supported: string, []byte, int, int64,
// uint16, uint32, []string, []any, map[string]any, map[string]string.
func Marshal(v any) ([]byte, error) {
	return AppendMarshal(nil, v)
}

// AppendMarshal appends the bencoding of v to dst.
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		dst = strconv.AppendInt(dst, int64(len(x)), 10)
		dst = append(dst, ':')
		return append(dst, x...), nil
	case []byte:
		dst = strconv.AppendInt(dst, int64(len(x)), 10)
		dst = append(dst, ':')
		return append(dst, x...), nil
	case int:
		return appendInt(dst, int64(x)), nil
	case int64:
		return appendInt(dst, x), nil
	case uint16:
		return appendInt(dst, int64(x)), nil
	case uint32:
		return appendInt(dst, int64(x)), nil
	case []string:
		dst = append(dst, 'l')
		for _, s := range x {
			dst, _ = AppendMarshal(dst, s)
		}
		return append(dst, 'e'), nil
	case []any:
		dst = append(dst, 'l')
		for _, e := range x {
			var err error
			if dst, err = AppendMarshal(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, 'e'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, 'd')
		for _, k := range keys {
			dst, _ = AppendMarshal(dst, k)
			var err error
			if dst, err = AppendMarshal(dst, x[k]); err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
		}
		return append(dst, 'e'), nil
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return AppendMarshal(dst, m)
	default:
		return nil, fmt.Errorf("%w: %T", ErrType, v)
	}
}

func appendInt(dst []byte, n int64) []byte {
	dst = append(dst, 'i')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, 'e')
}

// Unmarshal decodes exactly one value filling all of buf.
func Unmarshal(buf []byte) (any, error) {
	v, rest, err := Decode(buf)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrSyntax, len(rest))
	}
	return v, nil
}

// Decode decodes one value from the front of buf and returns the rest.
func Decode(buf []byte) (v any, rest []byte, err error) {
	return decode(buf, 0)
}

func decode(buf []byte, depth int) (any, []byte, error) {
	if depth > maxDepth {
		return nil, nil, fmt.Errorf("%w: nested deeper than %d", ErrSyntax, maxDepth)
	}
	if len(buf) == 0 {
		return nil, nil, fmt.Errorf("%w: unexpected end", ErrSyntax)
	}
	switch c := buf[0]; {
	case c == 'i':
		end := indexByte(buf, 'e')
		if end < 0 {
			return nil, nil, fmt.Errorf("%w: unterminated integer", ErrSyntax)
		}
		digits := string(buf[1:end])
		if !canonicalInt(digits) {
			return nil, nil, fmt.Errorf("%w: bad integer %q", ErrSyntax, digits)
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: integer %q: %v", ErrSyntax, digits, err)
		}
		return n, buf[end+1:], nil
	case c >= '0' && c <= '9':
		return decodeString(buf)
	case c == 'l':
		list := []any{}
		rest := buf[1:]
		for {
			if len(rest) == 0 {
				return nil, nil, fmt.Errorf("%w: unterminated list", ErrSyntax)
			}
			if rest[0] == 'e' {
				return list, rest[1:], nil
			}
			var e any
			var err error
			if e, rest, err = decode(rest, depth+1); err != nil {
				return nil, nil, err
			}
			list = append(list, e)
		}
	case c == 'd':
		dict := map[string]any{}
		rest := buf[1:]
		for {
			if len(rest) == 0 {
				return nil, nil, fmt.Errorf("%w: unterminated dictionary", ErrSyntax)
			}
			if rest[0] == 'e' {
				return dict, rest[1:], nil
			}
			k, r, err := decodeString(rest)
			if err != nil {
				return nil, nil, fmt.Errorf("dictionary key: %w", err)
			}
			var e any
			if e, rest, err = decode(r, depth+1); err != nil {
				return nil, nil, err
			}
			dict[k.(string)] = e
		}
	default:
		return nil, nil, fmt.Errorf("%w: unexpected byte %q", ErrSyntax, c)
	}
}

func decodeString(buf []byte) (any, []byte, error) {
	colon := indexByte(buf, ':')
	if colon <= 0 {
		return nil, nil, fmt.Errorf("%w: string without length", ErrSyntax)
	}
	digits := string(buf[:colon])
	if !canonicalInt(digits) || digits[0] == '-' {
		return nil, nil, fmt.Errorf("%w: bad string length %q", ErrSyntax, digits)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > len(buf)-colon-1 {
		return nil, nil, fmt.Errorf("%w: string length %q exceeds input", ErrSyntax, digits)
	}
	start := colon + 1
	return string(buf[start : start+n]), buf[start+n:], nil
}

// canonicalInt accepts "0", "-5", "42"; rejects "", "-", "-0", "007".
func canonicalInt(s string) bool {
	d := s
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
		if d == "0" {
			return false
		}
	}
	if d == "" || (len(d) > 1 && d[0] == '0') {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
