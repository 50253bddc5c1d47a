package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// A record is how a value is stored, in the file and in Redis alike:
//
//	byte 0      record format (recordV1)
//	bytes 1..4  CRC-32C of the value, big endian
//	bytes 5..   the value
//
// The checksum catches a torn or bit-flipped value that the backend itself
// would hand back without complaint (bbolt checks its meta pages only).
const (
	recordV1     = 1
	recordHeader = 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends the record of value to dst.
func appendRecord(dst, value []byte) []byte {
	dst = append(dst, recordV1, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], crc32.Checksum(value, castagnoli))
	return append(dst, value...)
}

// decodeRecord returns the value inside rec (a subslice of rec).
func decodeRecord(rec []byte) ([]byte, error) {
	if len(rec) < recordHeader {
		return nil, fmt.Errorf("%w: record of %d bytes is shorter than its header", ErrCorrupt, len(rec))
	}
	if rec[0] != recordV1 {
		return nil, fmt.Errorf("%w: record format %d (this build reads %d)", ErrSchema, rec[0], recordV1)
	}
	value := rec[recordHeader:]
	if want, got := binary.BigEndian.Uint32(rec[1:5]), crc32.Checksum(value, castagnoli); want != got {
		return nil, fmt.Errorf("%w: record checksum %08x, computed %08x", ErrCorrupt, want, got)
	}
	return value, nil
}
