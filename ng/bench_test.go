package ng

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkCycle runs offer+answer+delete through the front's pipeline
// (cache, decode, command, table, reply) without the socket.
func BenchmarkCycle(b *testing.B) {
	r := newRig(b, instant())
	src := netip.MustParseAddrPort("127.0.0.1:9")
	sdpA, sdpB := sdpFor(mustAP("127.0.0.1:4000")), sdpFor(mustAP("127.0.0.1:5000"))
	msgs := func(i int) [3][]byte {
		id := fmt.Sprintf("bench-%d", i)
		var out [3][]byte
		for j, d := range []Dict{
			{"command": "offer", "call-id": id, "from-tag": "a", "sdp": sdpA, "replace": []string{"origin"}},
			{"command": "answer", "call-id": id, "from-tag": "a", "to-tag": "b", "sdp": sdpB},
			{"command": "delete", "call-id": id, "from-tag": "a"},
		} {
			body, _ := Marshal(nil, d)
			out[j] = append([]byte(fmt.Sprintf("c%d.%d ", i, j)), body...)
		}
		return out
	}
	var dec Decoder
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m := msgs(i)
		b.StartTimer()
		for _, dg := range m {
			rep := r.srv.handle(&dec, src, dg)
			if !bytes.Contains(rep, []byte("6:result2:ok")) {
				b.Fatalf("%q → %q", dg, rep)
			}
		}
	}
}
