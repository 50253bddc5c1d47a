package confbridge

import (
	"strconv"
	"strings"
)

// Codec is the static RTP payload type of a codec the mixer handles natively.
type Codec uint8

const (
	PCMU Codec = 0 // G.711 µ-law
	PCMA Codec = 8 // G.711 A-law
)

// ParseCodec maps an SDP/Media Control codec name ("PCMU", "PCMA",
// case-insensitive) to its Codec.
func ParseCodec(name string) (Codec, bool) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "PCMU":
		return PCMU, true
	case "PCMA":
		return PCMA, true
	}
	return 0, false
}

func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return "PT" + strconv.Itoa(int(c))
}

func (c Codec) law() *law {
	switch c {
	case PCMU:
		return lawU
	case PCMA:
		return lawA
	}
	return nil
}
