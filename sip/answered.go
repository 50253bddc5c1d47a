package sip

import (
	"hash/maphash"
	"net/netip"
	"strconv"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// answered remembers the final responses we sent on UDP, as wire bytes keyed
// by the transaction of the request they answer, for at least 64·T1 (RFC
// 3261 Timer J for non-INVITE requests; Timer L of RFC 6026 for a 2xx to
// INVITE). The server transaction ends as soon as such a response is sent
// (respond), so a retransmission of the request reaches the handlers again:
// it is answered from here with the same bytes and never acted on twice.
//
// sipgo keeps a whole transaction (the parsed request, the response, a
// runtime timer and its closure) for those 32 s; at thousands of calls a
// second that is gigabytes of live heap for the garbage collector to mark.
// Here the responses of one time span are packed into fixed-size chunks,
// and a span's entries are dropped together when the ring comes round (its
// chunks are then reused): no timer, no goroutine, no allocation once warm,
// and keys, slots and bytes hold no pointers, so the garbage collector
// scans none of it.
type answered struct {
	seed0, seed1 maphash.Seed
	span         time.Duration // what one bucket covers

	mu     sync.Mutex // guards the fields below
	slots  map[txKey]answer
	ring   [ringBuckets]bucket
	cur    int      // the bucket being filled
	curEnd int64    // unix nanoseconds: when cur is full and the next begins
	free   [][]byte // chunks of emptied buckets, for reuse
	cold   [][]byte // free chunks whose memory went back to the system
}

// chunkSize is the size of the chunks responses are packed into (a UDP
// response we send is at most UDPMTUSize-200 bytes).
const chunkSize = 64 << 10

// ringBuckets spans 64·T1 in ringBuckets-1 whole buckets: an entry lives
// from 64·T1 to 64·T1 plus one span.
const ringBuckets = 33

// txKey identifies a request's transaction: two independent 64-bit hashes
// of its top Via (branch and sent-by), method, Call-ID, From tag and CSeq.
type txKey [2]uint64

// answer is where a response's bytes are and where they went.
type answer struct {
	bucket, gen uint32 // the bucket and its generation when stored
	chunk       uint32 // the chunk of the bucket
	off, n      uint32 // the bytes in the chunk
	ip          [16]byte
	port        uint16
}

type bucket struct {
	gen    uint32
	chunks [][]byte // filled in order; only the last has room left
	keys   []txKey  // in the order stored; some may have been replaced since
}

func newAnswered() *answered {
	return &answered{seed0: maphash.MakeSeed(), seed1: maphash.MakeSeed(),
		span: 64 * gosip.T1 / (ringBuckets - 1), slots: make(map[txKey]answer)}
}

// key is the transaction key of a request, or of the response to it (a
// response copies the top Via, From, Call-ID and CSeq of its request).
// ACK maps to nothing: ACKs are never answered.
func (a *answered) key(m gosip.Message) (txKey, bool) {
	via, cseq, from, cid := m.Via(), m.CSeq(), m.From(), m.CallID()
	if via == nil || cseq == nil || from == nil || cid == nil || cseq.MethodName == gosip.ACK {
		return txKey{}, false
	}
	branch, _ := via.Params.Get("branch")
	tag, _ := from.Params.Get("tag")
	var buf [24]byte
	nums := strconv.AppendUint(buf[:0], uint64(cseq.SeqNo), 10)
	nums = append(nums, ' ')
	nums = strconv.AppendInt(nums, int64(via.Port), 10)
	var k txKey
	for i, seed := range [2]maphash.Seed{a.seed0, a.seed1} {
		var h maphash.Hash
		h.SetSeed(seed)
		for _, s := range [...]string{branch, via.Host, string(cseq.MethodName), cid.Value(), tag} {
			h.WriteString(s)
			h.WriteByte(0)
		}
		h.Write(nums)
		k[i] = h.Sum64()
	}
	return k, true
}

// put remembers wire as the answer to the transaction k, sent to dest.
func (a *answered) put(k txKey, wire []byte, dest netip.AddrPort) {
	a.putAt(time.Now().UnixNano(), k, wire, dest)
}

func (a *answered) putAt(now int64, k txKey, wire []byte, dest netip.AddrPort) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	if len(wire) > chunkSize {
		return
	}
	b := &a.ring[a.cur]
	if n := len(b.chunks); n == 0 || len(b.chunks[n-1])+len(wire) > chunkSize {
		b.chunks = append(b.chunks, a.chunk())
	}
	last := len(b.chunks) - 1
	c := b.chunks[last]
	a.slots[k] = answer{bucket: uint32(a.cur), gen: b.gen, chunk: uint32(last), off: uint32(len(c)), n: uint32(len(wire)),
		ip: dest.Addr().As16(), port: dest.Port()}
	b.chunks[last] = append(c, wire...)
	b.keys = append(b.keys, k)
}

// chunk is an empty chunk: a free one, else one whose memory went back
// to the system, else one of a new slab. Caller holds mu.
//
// The chunks live outside the Go heap (mapChunks): at thousands of calls a
// second the ring holds hundreds of megabytes for 64·T1, and in the heap
// those would count towards the garbage collector's goal, which would let
// the heap grow to several times that before collecting.
func (a *answered) chunk() []byte {
	for _, list := range []*[][]byte{&a.free, &a.cold} {
		if n := len(*list); n > 0 {
			c := (*list)[n-1]
			(*list)[n-1] = nil
			*list = (*list)[:n-1]
			return c
		}
	}
	a.free = mapChunks(a.free)
	return a.chunk()
}

// get returns a copy of the answer to the transaction k and where it went.
func (a *answered) get(k txKey) ([]byte, netip.AddrPort, bool) {
	return a.getAt(time.Now().UnixNano(), k)
}

func (a *answered) getAt(now int64, k txKey) ([]byte, netip.AddrPort, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	s, ok := a.slots[k]
	if !ok {
		return nil, netip.AddrPort{}, false
	}
	c := a.ring[s.bucket].chunks[s.chunk]
	wire := append([]byte(nil), c[s.off:s.off+s.n]...)
	return wire, netip.AddrPortFrom(netip.AddrFrom16(s.ip).Unmap(), s.port), true
}

// len is how many answers are held (for tests).
func (a *answered) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.slots)
}

// advance moves the ring on to the bucket for now, emptying the buckets it
// reuses. Caller holds mu.
func (a *answered) advance(now int64) {
	if now < a.curEnd {
		return
	}
	span := int64(a.span)
	if a.curEnd == 0 || now-a.curEnd >= ringBuckets*span {
		for i := range a.ring { // idle for a whole ring (or never used): all expired
			a.clear(i)
		}
		a.curEnd = now + span
		return
	}
	for now >= a.curEnd {
		a.cur = (a.cur + 1) % ringBuckets
		a.clear(a.cur)
		a.curEnd += span
	}
}

// clear drops the entries of bucket i. Caller holds mu.
func (a *answered) clear(i int) {
	b := &a.ring[i]
	for _, k := range b.keys {
		if s, ok := a.slots[k]; ok && s.bucket == uint32(i) && s.gen == b.gen {
			delete(a.slots, k)
		}
	}
	b.gen++
	// The chunks go to the free list, which keeps no more than this span
	// needed (plus a few): after a burst, the memory of the others goes
	// back to the system (the chunks stay mapped, for the next burst).
	for i, c := range b.chunks {
		a.free = append(a.free, c[:0])
		b.chunks[i] = nil
	}
	keep := len(b.chunks) + 4
	for len(a.free) > keep {
		c := a.free[len(a.free)-1]
		a.free = a.free[:len(a.free)-1]
		releaseChunk(c)
		a.cold = append(a.cold, c)
	}
	b.chunks = b.chunks[:0]
	if cap(b.keys) > 4096 && cap(b.keys) > 4*len(b.keys) {
		b.keys = nil
	} else {
		b.keys = b.keys[:0]
	}
}
