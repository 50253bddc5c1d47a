package rtpproxy

import (
	"testing"

	"github.com/pion/rtcp"
)

func TestParseRTCP(t *testing.T) {
	rep := func(ssrc, lsr, dlsr uint32) rtcp.ReceptionReport {
		return rtcp.ReceptionReport{SSRC: ssrc, LastSenderReport: lsr, Delay: dlsr}
	}
	tests := []struct {
		name    string
		pkts    []rtcp.Packet
		hasSR   bool
		srNTP   uint32
		reports []rtcp.ReceptionReport
	}{
		{"SR with a report and SDES", []rtcp.Packet{
			&rtcp.SenderReport{SSRC: 1, NTPTime: 0xAAAABBBBCCCCDDDD, Reports: []rtcp.ReceptionReport{rep(2, 7, 8)}},
			&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x"}}}}},
		}, true, 0xBBBBCCCC, []rtcp.ReceptionReport{rep(2, 7, 8)}},
		{"RR with two reports", []rtcp.Packet{
			&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{rep(2, 3, 4), rep(5, 6, 7)}},
		}, false, 0, []rtcp.ReceptionReport{rep(2, 3, 4), rep(5, 6, 7)}},
		{"BYE only", []rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{1}}}, false, 0, nil},
		{"PLI and RR", []rtcp.Packet{
			&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2},
			&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{rep(9, 10, 11)}},
		}, false, 0, []rtcp.ReceptionReport{rep(9, 10, 11)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := rtcp.Marshal(tt.pkts)
			if err != nil {
				t.Fatal(err)
			}
			var s rtcpSummary
			if !parseRTCP(raw, &s) {
				t.Fatal("rejected")
			}
			if s.hasSR != tt.hasSR || s.srNTP != tt.srNTP || s.n != len(tt.reports) {
				t.Fatalf("summary SR %v %x, %d reports", s.hasSR, s.srNTP, s.n)
			}
			for i, r := range tt.reports {
				if s.reports[i] != r {
					t.Fatalf("report %d = %+v, want %+v", i, s.reports[i], r)
				}
			}
			for cut := 1; cut < len(raw); cut++ {
				if parseRTCP(raw[:cut], &s) && cut%4 != 0 {
					t.Fatalf("accepted a packet cut at %d of %d", cut, len(raw))
				}
			}
		})
	}
	var s rtcpSummary
	for _, bad := range [][]byte{nil, {0x80}, {0x40, 200, 0, 0}, {0x81, 201, 0, 1, 0, 0, 0, 1}} {
		if parseRTCP(bad, &s) {
			t.Errorf("accepted % x", bad)
		}
	}
}

// FuzzParseRTCP checks the allocation-free walk against pion/rtcp: where
// both accept a datagram they find the same SR time and reception reports.
func FuzzParseRTCP(f *testing.F) {
	seed, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 40, Reports: []rtcp.ReceptionReport{{SSRC: 2, LastSenderReport: 3, Delay: 4}}},
		&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 5}}},
		&rtcp.Goodbye{Sources: []uint32{1}},
	})
	f.Add(seed)
	f.Add([]byte{0xa0, 201, 0, 1, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var s rtcpSummary
		ok := parseRTCP(raw, &s)
		if !ok {
			return
		}
		if s.n < 0 || s.n > maxReports {
			t.Fatalf("%d reports", s.n)
		}
		pkts, err := rtcp.Unmarshal(raw)
		if err != nil {
			return // pion checks the bodies of other packet types too
		}
		var hasSR bool
		var srNTP uint32
		var reports []rtcp.ReceptionReport
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.SenderReport:
				if !hasSR {
					hasSR, srNTP = true, uint32(p.NTPTime>>16)
				}
				reports = append(reports, p.Reports...)
			case *rtcp.ReceiverReport:
				reports = append(reports, p.Reports...)
			}
		}
		if len(reports) > maxReports {
			reports = reports[:maxReports]
		}
		if hasSR != s.hasSR || srNTP != s.srNTP || len(reports) != s.n {
			t.Fatalf("ours SR %v %x %d reports; pion SR %v %x %d reports", s.hasSR, s.srNTP, s.n, hasSR, srNTP, len(reports))
		}
		for i, r := range reports {
			if s.reports[i] != r {
				t.Fatalf("report %d: ours %+v pion %+v", i, s.reports[i], r)
			}
		}
	})
}
