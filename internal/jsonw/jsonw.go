// Package jsonw appends JSON values to a byte slice by hand, for the state
// records written on the call-setup path, where encoding/json's reflection
// cost several per cent of the call rate. Each user's test holds its
// encoder to encoding/json's reading of the same struct.
package jsonw

import "strconv"

// String appends v as a JSON string: quotes, backslashes and control
// characters escaped, everything else as it is (UTF-8 passes through).
func String(b []byte, v string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Field appends `,"name":` (or `{"name":` for the first field of an
// object, first true).
func Field(b []byte, name string, first bool) []byte {
	if first {
		b = append(b, '{')
	} else {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// StringField appends `,"name":"v"`.
func StringField(b []byte, name, v string) []byte { return String(Field(b, name, false), v) }

// UintField appends `,"name":v`.
func UintField(b []byte, name string, v uint64) []byte {
	return strconv.AppendUint(Field(b, name, false), v, 10)
}

// IntField appends `,"name":v`.
func IntField(b []byte, name string, v int64) []byte {
	return strconv.AppendInt(Field(b, name, false), v, 10)
}

// BoolField appends `,"name":v`.
func BoolField(b []byte, name string, v bool) []byte {
	return strconv.AppendBool(Field(b, name, false), v)
}
