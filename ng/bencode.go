package ng

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// ErrSyntax reports malformed bencoding.
var ErrSyntax = errors.New("bencode: syntax error")

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 32

// Value is one decoded bencode value. Strings alias the decoded buffer;
// list elements and dictionary entries (key, value, key, value, ...) live in
// the Decoder's arena. A Value is valid until its Decoder decodes again.
type Value struct {
	kind  byte // 's' string, 'i' integer, 'l' list, 'd' dictionary; 0 = absent
	str   []byte
	num   int64
	items []Value
}

// Kinds of Value.
const (
	KindString = 's'
	KindInt    = 'i'
	KindList   = 'l'
	KindDict   = 'd'
)

// Kind is 's', 'i', 'l', 'd', or 0 for an absent value.
func (v Value) Kind() byte { return v.kind }

// Valid reports whether v holds a value (Get of a missing key does not).
func (v Value) Valid() bool { return v.kind != 0 }

// Bytes is a string's content (aliasing the input); nil for other kinds.
func (v Value) Bytes() []byte {
	if v.kind != KindString {
		return nil
	}
	return v.str
}

// Str is a string's content as a Go string (a copy); an integer is
// formatted in decimal, as rtpengine accepts both for numeric keys.
func (v Value) Str() string {
	switch v.kind {
	case KindString:
		return string(v.str)
	case KindInt:
		return strconv.FormatInt(v.num, 10)
	}
	return ""
}

// Int is an integer's value, or a decimal string's; ok is false otherwise.
func (v Value) Int() (int64, bool) {
	switch v.kind {
	case KindInt:
		return v.num, true
	case KindString:
		n, err := strconv.ParseInt(string(v.str), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Len is the number of list elements or dictionary entries.
func (v Value) Len() int {
	switch v.kind {
	case KindList:
		return len(v.items)
	case KindDict:
		return len(v.items) / 2
	}
	return 0
}

// Index is list element i.
func (v Value) Index(i int) Value {
	if v.kind != KindList || i < 0 || i >= len(v.items) {
		return Value{}
	}
	return v.items[i]
}

// Entry is dictionary entry i: its key and value.
func (v Value) Entry(i int) (key []byte, val Value) {
	if v.kind != KindDict || i < 0 || 2*i+1 >= len(v.items) {
		return nil, Value{}
	}
	return v.items[2*i].str, v.items[2*i+1]
}

// Get is the value of the first entry named key, or an absent Value.
func (v Value) Get(key string) Value {
	if v.kind != KindDict {
		return Value{}
	}
	for i := 0; i+1 < len(v.items); i += 2 {
		if string(v.items[i].str) == key {
			return v.items[i+1]
		}
	}
	return Value{}
}

// Decoder decodes bencoding; reused, it allocates nothing once its arena
// has grown to the size of the largest message.
type Decoder struct {
	arena   []Value
	scratch []Value
}

// Decode decodes exactly one value filling all of buf.
func (d *Decoder) Decode(buf []byte) (Value, error) {
	d.arena = d.arena[:0]
	d.scratch = d.scratch[:0]
	v, rest, err := d.decode(buf, 0)
	if err != nil {
		return Value{}, err
	}
	if len(rest) != 0 {
		return Value{}, fmt.Errorf("%w: %d trailing bytes", ErrSyntax, len(rest))
	}
	return v, nil
}

func (d *Decoder) decode(buf []byte, depth int) (Value, []byte, error) {
	if len(buf) == 0 {
		return Value{}, nil, fmt.Errorf("%w: unexpected end", ErrSyntax)
	}
	switch c := buf[0]; {
	case c == 'i':
		end := indexByte(buf, 'e')
		if end < 0 {
			return Value{}, nil, fmt.Errorf("%w: unterminated integer", ErrSyntax)
		}
		n, ok := parseCanonical(buf[1:end], true)
		if !ok {
			return Value{}, nil, fmt.Errorf("%w: bad integer %q", ErrSyntax, clip(buf[1:end]))
		}
		return Value{kind: KindInt, num: n}, buf[end+1:], nil
	case c >= '0' && c <= '9':
		return decodeString(buf)
	case c == 'l' || c == 'd':
		if depth >= maxDepth {
			return Value{}, nil, fmt.Errorf("%w: nested deeper than %d", ErrSyntax, maxDepth)
		}
		start := len(d.scratch)
		rest := buf[1:]
		for {
			if len(rest) == 0 {
				d.scratch = d.scratch[:start]
				return Value{}, nil, fmt.Errorf("%w: unterminated %s", ErrSyntax, containerName(c))
			}
			if rest[0] == 'e' {
				rest = rest[1:]
				break
			}
			if c == 'd' {
				k, r, err := decodeString(rest)
				if err != nil {
					d.scratch = d.scratch[:start]
					return Value{}, nil, fmt.Errorf("dictionary key: %w", err)
				}
				d.scratch = append(d.scratch, k)
				rest = r
			}
			e, r, err := d.decode(rest, depth+1)
			if err != nil {
				d.scratch = d.scratch[:start]
				return Value{}, nil, err
			}
			d.scratch = append(d.scratch, e)
			rest = r
		}
		// The children are contiguous on scratch; move them to the arena so
		// this container's items stay put while the parent keeps appending.
		a := len(d.arena)
		d.arena = append(d.arena, d.scratch[start:]...)
		d.scratch = d.scratch[:start]
		return Value{kind: c, items: d.arena[a:len(d.arena):len(d.arena)]}, rest, nil
	default:
		return Value{}, nil, fmt.Errorf("%w: unexpected byte %q", ErrSyntax, c)
	}
}

func containerName(c byte) string {
	if c == 'd' {
		return "dictionary"
	}
	return "list"
}

func decodeString(buf []byte) (Value, []byte, error) {
	colon := indexByte(buf, ':')
	if colon <= 0 {
		return Value{}, nil, fmt.Errorf("%w: string without length", ErrSyntax)
	}
	n, ok := parseCanonical(buf[:colon], false)
	if !ok || n > int64(len(buf)-colon-1) {
		return Value{}, nil, fmt.Errorf("%w: bad string length %q", ErrSyntax, clip(buf[:colon]))
	}
	start := colon + 1
	end := start + int(n)
	return Value{kind: KindString, str: buf[start:end:end]}, buf[end:], nil
}

// parseCanonical accepts "0", "42" and (signed) "-5"; it rejects "", "-",
// "-0", "007" and anything beyond int64, so every accepted input re-encodes
// byte for byte.
func parseCanonical(b []byte, signed bool) (int64, bool) {
	neg := false
	if signed && len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && (len(b) > 1 || neg)) {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func clip(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}

// Append appends v's bencoding (entries in their decoded order).
func (v Value) Append(dst []byte) []byte {
	switch v.kind {
	case KindString:
		return AppendBytes(dst, v.str)
	case KindInt:
		return AppendInt(dst, v.num)
	case KindList, KindDict:
		dst = append(dst, v.kind)
		for _, e := range v.items {
			dst = e.Append(dst)
		}
		return append(dst, 'e')
	}
	return dst
}

// AppendString appends s as a bencode string.
func AppendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// AppendBytes appends b as a bencode string.
func AppendBytes(dst []byte, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	return append(dst, b...)
}

// AppendInt appends n as a bencode integer.
func AppendInt(dst []byte, n int64) []byte {
	dst = append(dst, 'i')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, 'e')
}

// Dict is a reply dictionary built for encoding; Marshal sorts its keys.
type Dict map[string]any

// List is a reply list.
type List []any

// Marshal appends the bencoding of x: string, []byte, int, int64, uint64,
// []string, List, Dict or Value. Dictionary keys are written in sorted
// order, as bencoding requires.
func Marshal(dst []byte, x any) ([]byte, error) {
	switch v := x.(type) {
	case string:
		return AppendString(dst, v), nil
	case []byte:
		return AppendBytes(dst, v), nil
	case int:
		return AppendInt(dst, int64(v)), nil
	case int64:
		return AppendInt(dst, v), nil
	case uint64:
		if v > 1<<63-1 {
			v = 1<<63 - 1
		}
		return AppendInt(dst, int64(v)), nil
	case []string:
		dst = append(dst, 'l')
		for _, s := range v {
			dst = AppendString(dst, s)
		}
		return append(dst, 'e'), nil
	case List:
		dst = append(dst, 'l')
		for _, e := range v {
			var err error
			if dst, err = Marshal(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, 'e'), nil
	case Dict:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, 'd')
		for _, k := range keys {
			dst = AppendString(dst, k)
			var err error
			if dst, err = Marshal(dst, v[k]); err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
		}
		return append(dst, 'e'), nil
	case Value:
		return v.Append(dst), nil
	}
	return nil, fmt.Errorf("bencode: cannot encode %T", x)
}
