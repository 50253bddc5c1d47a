package audio

// WAV (RIFF WAVE) files at 8 kHz mono: 16-bit PCM, µ-law or A-law. Prompts
// are read whole and decoded to linear samples once; recordings are
// written incrementally with a header that is valid from the first byte
// (sizes patched as the file grows, so a file cut by a crash still plays).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Encoding is a WAV sample encoding the gateway reads and writes.
type Encoding int

const (
	PCM16 Encoding = iota // linear 16-bit little-endian
	Ulaw                  // G.711 µ-law
	Alaw                  // G.711 A-law
)

func (e Encoding) String() string {
	switch e {
	case PCM16:
		return "pcm"
	case Ulaw:
		return "ulaw"
	case Alaw:
		return "alaw"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// ParseEncoding reads the Media Control names "pcm", "ulaw", "alaw"
// ("" is pcm).
func ParseEncoding(s string) (Encoding, bool) {
	switch s {
	case "", "pcm", "PCM":
		return PCM16, true
	case "ulaw", "mulaw", "PCMU":
		return Ulaw, true
	case "alaw", "PCMA":
		return Alaw, true
	}
	return 0, false
}

// WAVE format tags.
const (
	tagPCM        = 1
	tagAlaw       = 6
	tagUlaw       = 7
	tagExtensible = 0xfffe
)

// ErrFormat is wrapped by every "this is not a WAV we play" error.
var ErrFormat = errors.New("audio: unsupported WAV")

// MaxWAVBytes bounds a prompt file read into memory (about 17 minutes of
// 16-bit audio).
const MaxWAVBytes = 16 << 20

// ReadWAV decodes a whole WAV prompt to 8 kHz linear samples. Anything but
// 8 kHz mono PCM16, µ-law or A-law is an error wrapping ErrFormat that says
// what the file is.
func ReadWAV(r io.Reader) ([]int16, Encoding, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxWAVBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > MaxWAVBytes {
		return nil, 0, fmt.Errorf("%w: larger than %d bytes", ErrFormat, MaxWAVBytes)
	}
	return ParseWAV(data)
}

// ParseWAV is ReadWAV on bytes in memory.
func ParseWAV(b []byte) ([]int16, Encoding, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("%w: not a RIFF WAVE file", ErrFormat)
	}
	var (
		haveFmt bool
		enc     Encoding
		bits    int
	)
	p := b[12:]
	for len(p) >= 8 {
		id, size := string(p[0:4]), binary.LittleEndian.Uint32(p[4:8])
		p = p[8:]
		body := p
		if uint64(size) < uint64(len(body)) {
			body = body[:size]
		}
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, fmt.Errorf("%w: short fmt chunk", ErrFormat)
			}
			tag := binary.LittleEndian.Uint16(body[0:])
			ch := binary.LittleEndian.Uint16(body[2:])
			rate := binary.LittleEndian.Uint32(body[4:])
			bits = int(binary.LittleEndian.Uint16(body[14:]))
			if tag == tagExtensible && len(body) >= 26 {
				tag = binary.LittleEndian.Uint16(body[24:]) // the sub-format GUID's first two bytes
			}
			switch {
			case tag == tagPCM && bits == 16:
				enc = PCM16
			case tag == tagUlaw && bits == 8:
				enc = Ulaw
			case tag == tagAlaw && bits == 8:
				enc = Alaw
			default:
				return nil, 0, fmt.Errorf("%w: format tag %d with %d bits per sample (want PCM16, µ-law or A-law)", ErrFormat, tag, bits)
			}
			if ch != 1 || rate != SampleRate {
				return nil, 0, fmt.Errorf("%w: %d channels at %d Hz (want mono at 8000 Hz)", ErrFormat, ch, rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, 0, fmt.Errorf("%w: data before fmt", ErrFormat)
			}
			return decodeSamples(body, enc), enc, nil // a short data chunk (cut file) plays what it has
		}
		if uint64(size)+uint64(size&1) >= uint64(len(p)) {
			break
		}
		p = p[size+size&1:]
	}
	return nil, 0, fmt.Errorf("%w: no data chunk", ErrFormat)
}

func decodeSamples(body []byte, enc Encoding) []int16 {
	switch enc {
	case PCM16:
		out := make([]int16, len(body)/2)
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
		}
		return out
	case Ulaw:
		out := make([]int16, len(body))
		DecodeUlaw(out, body)
		return out
	default:
		out := make([]int16, len(body))
		DecodeAlaw(out, body)
		return out
	}
}

// EncodeWAV returns a whole WAV file of pcm in enc (tests and tools).
func EncodeWAV(pcm []int16, enc Encoding) []byte {
	var w memFile
	ww, err := newWAVWriter(&w, enc)
	if err != nil {
		panic(err) // memFile never fails
	}
	if err := ww.Write(pcm); err != nil {
		panic(err)
	}
	if err := ww.Close(); err != nil {
		panic(err)
	}
	return w.b
}

// writerAt is what a WAVWriter needs of its file.
type writerAt interface {
	io.Writer
	io.WriterAt
}

// WAVWriter writes a recording. Its header is written when it is created
// and its sizes are patched by Sync and Close, so the file on disk is a
// valid WAV of what was synced even if the process dies.
type WAVWriter struct {
	f        writerAt
	enc      Encoding
	hdrLen   int64
	dataSize int64
	buf      []byte
}

// CreateWAV creates (or truncates) path and writes the header.
func CreateWAV(path string, enc Encoding) (*WAVWriter, *os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, nil, err
	}
	w, err := newWAVWriter(f, enc)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, nil, err
	}
	return w, f, nil
}

func newWAVWriter(f writerAt, enc Encoding) (*WAVWriter, error) {
	w := &WAVWriter{f: f, enc: enc}
	hdr := w.header()
	if _, err := f.Write(hdr); err != nil {
		return nil, err
	}
	w.hdrLen = int64(len(hdr))
	return w, nil
}

// header is the RIFF header for the current data size. Non-PCM formats
// carry an 18-byte fmt chunk and a fact chunk, as the WAVE spec asks.
func (w *WAVWriter) header() []byte {
	tag, bits, align := uint16(tagPCM), uint16(16), uint16(2)
	fmtLen := 16
	if w.enc != PCM16 {
		tag, bits, align, fmtLen = tagUlaw, 8, 1, 18
		if w.enc == Alaw {
			tag = tagAlaw
		}
	}
	h := make([]byte, 0, 58)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, 0) // patched below
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, uint32(fmtLen))
	h = binary.LittleEndian.AppendUint16(h, tag)
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint32(h, SampleRate)
	h = binary.LittleEndian.AppendUint32(h, SampleRate*uint32(align))
	h = binary.LittleEndian.AppendUint16(h, align)
	h = binary.LittleEndian.AppendUint16(h, bits)
	if fmtLen == 18 {
		h = binary.LittleEndian.AppendUint16(h, 0)
		h = append(h, "fact"...)
		h = binary.LittleEndian.AppendUint32(h, 4)
		h = binary.LittleEndian.AppendUint32(h, uint32(w.dataSize)) // samples = bytes at 8 bits
	}
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(w.dataSize))
	binary.LittleEndian.PutUint32(h[4:], uint32(len(h)-8)+uint32(w.dataSize))
	return h
}

// Write appends samples (encoded in the writer's encoding).
func (w *WAVWriter) Write(pcm []int16) error {
	n := len(pcm)
	if w.enc == PCM16 {
		n *= 2
	}
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	b := w.buf[:n]
	switch w.enc {
	case PCM16:
		for i, s := range pcm {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
		}
	case Ulaw:
		EncodeUlaw(b, pcm)
	case Alaw:
		EncodeAlaw(b, pcm)
	}
	if w.dataSize+int64(n) > 0xffff_fff0-w.hdrLen {
		return fmt.Errorf("audio: WAV file would exceed 4 GiB")
	}
	m, err := w.f.Write(b)
	w.dataSize += int64(m)
	return err
}

// Sync patches the header's sizes to what was written so far.
func (w *WAVWriter) Sync() error {
	_, err := w.f.WriteAt(w.header(), 0)
	return err
}

// Close patches the header; it does not close the file.
func (w *WAVWriter) Close() error { return w.Sync() }

// Samples is how many samples were written.
func (w *WAVWriter) Samples() int64 {
	if w.enc == PCM16 {
		return w.dataSize / 2
	}
	return w.dataSize
}

// memFile is an in-memory writerAt.
type memFile struct{ b []byte }

func (m *memFile) Write(p []byte) (int, error) { m.b = append(m.b, p...); return len(p), nil }
func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if need := int(off) + len(p); need > len(m.b) {
		m.b = append(m.b, make([]byte, need-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

// AppendWAV opens a recording made by CreateWAV in enc to go on writing
// at its end (a recording resumed after a restart). The header may be
// stale (the process died between two Syncs): the data size is taken from
// the file's length, cut to whole samples, and the header patched at once.
// A file that is not such a recording is refused and left alone; a missing
// one is created.
func AppendWAV(path string, enc Encoding) (*WAVWriter, *os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return CreateWAV(path, enc)
	}
	if err != nil {
		return nil, nil, err
	}
	w := &WAVWriter{f: f, enc: enc}
	want := w.header() // the header of an empty recording in enc
	w.hdrLen = int64(len(want))
	got := make([]byte, len(want))
	st, err := f.Stat()
	if err == nil {
		_, err = io.ReadFull(f, got)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("audio: %s: not a recording to resume: %v", path, err)
	}
	// Everything but the size fields must match (RIFF size, fact samples, data size).
	sizes := map[int]bool{4: true, 5: true, 6: true, 7: true, len(want) - 4: true, len(want) - 3: true, len(want) - 2: true, len(want) - 1: true}
	if enc != PCM16 {
		for i := len(want) - 12; i < len(want)-8; i++ { // the fact chunk's sample count
			sizes[i] = true
		}
	}
	for i := range want {
		if !sizes[i] && got[i] != want[i] {
			f.Close()
			return nil, nil, fmt.Errorf("audio: %s is not a %v recording: its header differs at byte %d", path, enc, i)
		}
	}
	w.dataSize = st.Size() - w.hdrLen
	if enc == PCM16 {
		w.dataSize &^= 1
	}
	if err := f.Truncate(w.hdrLen + w.dataSize); err == nil {
		_, err = f.Seek(0, io.SeekEnd)
	}
	if err == nil {
		err = w.Sync()
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return w, f, nil
}
