package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecord(t *testing.T) {
	for name, tc := range map[string]struct {
		rec  []byte
		want error
	}{
		"empty":        {nil, ErrCorrupt},
		"short header": {[]byte{recordV1, 0, 0}, ErrCorrupt},
		"bad crc":      {[]byte{recordV1, 1, 2, 3, 4, 'x'}, ErrCorrupt},
		"unknown":      {[]byte{9, 0, 0, 0, 0}, ErrSchema},
		"good":         {appendRecord(nil, []byte("value")), nil},
		"good empty":   {appendRecord(nil, nil), nil},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeRecord(tc.rec); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
				t.Fatalf("decode %x: %v, want %v", tc.rec, err, tc.want)
			}
		})
	}
}

// Whatever decodes encodes back to the same bytes, and every value round-trips.
func FuzzRecord(f *testing.F) {
	f.Add(appendRecord(nil, []byte(`{"id":"1","port":20000}`)))
	f.Add(appendRecord(nil, nil))
	f.Add([]byte{recordV1, 0, 0, 0, 0})
	f.Add([]byte{2, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := decodeRecord(data); err == nil {
			if again := appendRecord(nil, v); !bytes.Equal(again, data) {
				t.Fatalf("decode then encode: %x, was %x", again, data)
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSchema) {
			t.Fatalf("decode error %v is neither ErrCorrupt nor ErrSchema", err)
		}
		rec := appendRecord([]byte("prefix"), data)
		v, err := decodeRecord(rec[len("prefix"):])
		if err != nil || !bytes.Equal(v, data) {
			t.Fatalf("round trip of %x: %x, %v", data, v, err)
		}
		// One flipped bit is caught: in the header, and at a few places
		// of the value (every place would be quadratic in the input).
		r := rec[len("prefix"):]
		for _, i := range []int{0, 1, 4, recordHeader, len(r) / 2, len(r) - 1} {
			if i >= len(r) {
				continue
			}
			bad := bytes.Clone(r)
			bad[i] ^= 0x10
			if v, err := decodeRecord(bad); err == nil {
				t.Fatalf("bit flip at %d of %x not detected: %x", i, r, v)
			}
		}
	})
}
