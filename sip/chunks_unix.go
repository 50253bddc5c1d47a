//go:build linux || darwin || freebsd || netbsd || openbsd

package sip

import "golang.org/x/sys/unix"

// slabChunks is how many chunks one mapping holds (4 MiB).
const slabChunks = 64

// mapChunks appends the chunks of a new anonymous mapping to free: memory
// outside the Go heap, which the garbage collector neither counts nor
// scans. When the mapping fails they come from the heap.
func mapChunks(free [][]byte) [][]byte {
	slab, err := unix.Mmap(-1, 0, slabChunks*chunkSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return append(free, make([]byte, 0, chunkSize))
	}
	for i := range slabChunks {
		free = append(free, slab[i*chunkSize:i*chunkSize:(i+1)*chunkSize])
	}
	return free
}

// releaseChunk gives a free chunk's memory back to the system; the chunk
// stays usable (its pages come back zeroed when written).
func releaseChunk(c []byte) {
	_ = unix.Madvise(c[:cap(c)], unix.MADV_DONTNEED)
}
