package store

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPut measures what the caller pays per Put (queueing) and, at the
// end, how long the writer needs to get it all committed: ns/op covers both,
// since the timer runs through the final Flush.
func BenchmarkPut(b *testing.B) {
	value := make([]byte, 200) // about a connection's record; never modified
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	// every: Flush after that many Puts of distinct keys (0: only at the
	// end, so hot keys coalesce as they would under a burst).
	run := func(b *testing.B, st Store, every int) {
		b.ReportAllocs()
		b.SetBytes(int64(len(value)))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			st.Put("conn", ids[i%len(ids)], value)
			if every > 0 && i%every == every-1 {
				if err := st.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := st.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s := st.Stats()
		b.ReportMetric(float64(s.Writes)/float64(max(s.Batches, 1)), "writes/batch")
	}
	for _, every := range []int{0, 1000} {
		name := "burst"
		if every > 0 {
			name = "distinct" + strconv.Itoa(every)
		}
		b.Run("file/"+name, func(b *testing.B) {
			st, err := OpenFile(filepath.Join(b.TempDir(), "bench.state"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			run(b, st, every)
		})
		b.Run("redis/"+name, func(b *testing.B) {
			srv := startRedis(b)
			st, err := OpenRedis(RedisConfig{Addr: srv.addr(), Prefix: "bench:"}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			run(b, st, every)
		})
	}
}

// BenchmarkNext: IDs from reserved blocks.
func BenchmarkNext(b *testing.B) {
	st, err := OpenFile(filepath.Join(b.TempDir(), "bench.state"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := st.Next("conn"); err != nil {
			b.Fatal(err)
		}
	}
}
