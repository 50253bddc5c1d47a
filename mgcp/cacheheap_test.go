package mgcp

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

// BenchmarkCacheHeap100k runs 100,000 CRCX+DLCX cycles in-process and
// reports the live heap right after them (finding 4 of issue 10: ~250 MB
// before the response cache had a bound). -benchtime=1x.
func BenchmarkCacheHeap100k(b *testing.B) {
	for _, bound := range []CacheConfig{{}, DefaultConfig().ResponseCache} {
		b.Run(fmt.Sprintf("entries=%d", bound.MaxEntries), func(b *testing.B) {
			s := benchServer(b)
			s.cache = newTxCache(s.cache.now, bound.MaxEntries, bound.MaxBytes)
			src := netip.MustParseAddrPort("127.0.0.1:2727")
			var tid uint32
			for b.Loop() {
				for i := 0; i < 100000; i++ {
					cycle(b, s, src, &tid)
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heapMB")
			b.ReportMetric(float64(s.cache.len()), "cached")
		})
	}
}
