package procstat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// comm with a space and a ')' inside; utime=250 stime=31 ticks
	line := "4242 (osmo mgw) x)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 31 0 0 20 0 3 0 12345 1000000 500 18446744073709551615\n"
	got, err := ParseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 281 * 10 * time.Millisecond; got != want {
		t.Errorf("CPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 abc 5"} {
		if _, err := ParseStatCPU([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseStatCPU(%q) err = %v", bad, err)
		}
	}
}

func TestCPUSelf(t *testing.T) {
	if _, err := CPU(0); err != nil {
		t.Fatal(err)
	}
}

func TestParseUDPDrops(t *testing.T) {
	text := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1000: 0100007F:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 17
 1001: 0100007F:9C42 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 3
 1002: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 99
`
	// 0x9C40 = 40000, 0x9C42 = 40002, 0x1F90 = 8080 (outside)
	got, err := ParseUDPDrops(strings.NewReader(text), 40000, 40002)
	if err != nil || got != 20 {
		t.Errorf("drops = %d, %v; want 20", got, err)
	}
	if _, err := ParseUDPDrops(strings.NewReader("h\n 1: zz\n"), 0, 65535); !errors.Is(err, ErrFormat) {
		t.Errorf("err = %v", err)
	}
}

func TestParseCoreTimes(t *testing.T) {
	text := "cpu  100 0 50 1000 5 0 10 0 0 0\ncpu0 60 0 30 400 5 0 5 0 0 0\ncpu1 40 2 20 600 0 0 5 0 7 1\nintr 1\n"
	busy, total, err := ParseCoreTimes([]byte(text), 1)
	// cpu1: user 40 nice 2 sys 20 idle 600 iowait 0 irq 0 softirq 5 steal 0 guest 7 guest_nice 1
	if err != nil || busy != 67 || total != 667 {
		t.Errorf("cpu1 = %d/%d, %v; want 67/667", busy, total, err)
	}
	if _, _, err := ParseCoreTimes([]byte(text), 2); !errors.Is(err, ErrFormat) {
		t.Errorf("cpu2 err = %v", err)
	}
	if _, _, err := CoreTimes(0); err != nil {
		t.Error(err)
	}
}
