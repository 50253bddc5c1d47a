package session

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
)

// phone is a UDP peer on loopback that sends G.711 µ-law with its own SSRC
// and reads what the gateway sends it.
type phone struct {
	t    *testing.T
	c    *net.UDPConn
	ssrc uint32
	seq  uint16
	src  func([]int16)
}

func newPhone(t *testing.T, ssrc uint32) *phone {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &phone{t: t, c: c, ssrc: ssrc}
}

func (p *phone) addr() netip.AddrPort { return p.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// send sends one 20 ms packet to the gateway's port: p.src's audio, or
// silence.
func (p *phone) send(to netip.AddrPort) {
	pcm := make([]int16, 160)
	if p.src != nil {
		p.src(pcm)
	}
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	binary.BigEndian.PutUint16(pkt[2:], p.seq)
	binary.BigEndian.PutUint32(pkt[4:], uint32(p.seq)*160)
	binary.BigEndian.PutUint32(pkt[8:], p.ssrc)
	audio.EncodeUlaw(pkt[12:], pcm)
	p.seq++
	if _, err := p.c.WriteToUDPAddrPort(pkt, to); err != nil {
		p.t.Fatal(err)
	}
}

// each hands fn every packet that reaches p within d.
func (p *phone) each(d time.Duration, fn func(pkt []byte)) {
	buf := make([]byte, 1500)
	end := time.Now().Add(d)
	for {
		_ = p.c.SetReadDeadline(end)
		n, err := p.c.Read(buf)
		if err != nil {
			return
		}
		fn(buf[:n])
	}
}

// heard reads what arrived within d: packets by SSRC, and the loudest
// payload level seen (dBm0).
func (p *phone) heard(d time.Duration) (bySSRC map[uint32]int, loudest float64) {
	bySSRC, loudest = map[uint32]int{}, -100
	pcm := make([]int16, 160)
	p.each(d, func(pkt []byte) {
		if len(pkt) < 12+160 {
			return
		}
		bySSRC[binary.BigEndian.Uint32(pkt[8:])]++
		audio.DecodeUlaw(pcm, pkt[12:12+160])
		loudest = max(loudest, audio.LevelDBm0(pcm))
	})
	return bySSRC, loudest
}

// pace sends a packet from each phone every 20 ms until stop closes.
func pace(stop <-chan struct{}, legs map[*phone]netip.AddrPort) {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			for p, to := range legs {
				p.send(to)
			}
		}
	}
}

// A relay bridge's leg and a lone connection play through a lent mixer:
// the party played to hears the prompt, its partner keeps hearing it, and
// when the play ends the legs are relayed again (the other phone's own
// SSRC arrives unchanged).
func TestPlayOnUnmixedTargets(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1080, testPortMin+1099)
	dir := t.TempDir()
	f.cfg.Media.Dir = dir
	writePrompt(t, dir, "tone.wav", 600, audio.PCM16) // 1 kHz at -10 dBm0

	pa, pb := newPhone(t, 0xa), newPhone(t, 0xb)
	a, err := f.CreateConnection(ConnectionParams{Remote: pa.addr(), Codec: "PCMU", Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.CreateConnection(ConnectionParams{Remote: pb.addr(), Codec: "PCMU", Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	br, err := f.Bridge(a.ID, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	pa.src = audio.NewTone(400, 0, -20, audio.Off).Read
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { pace(stop, map[*phone]netip.AddrPort{pa: a.Local, pb: b.Local}); close(done) }()
	defer func() { close(stop); <-done }()

	if by, _ := pb.heard(200 * time.Millisecond); by[0xa] == 0 {
		t.Fatalf("relayed before the play: B got %v", by)
	}
	op, err := f.Play(b.ID, "", PlayParams{Prompts: []string{"tone.wav"}, TermDigit: -1})
	if err != nil {
		t.Fatal(err)
	}
	by, loud := pb.heard(300 * time.Millisecond)
	if by[0xa] > 3 || loud < -16 {
		t.Fatalf("during the play B got %v, loudest %.1f dBm0 (want the mixer's stream with the prompt)", by, loud)
	}
	r := f.nextOp(t)
	if r.OperationID != op || r.TerminationCondition != TermEOD || r.ConferenceID != br.ID {
		t.Fatalf("%+v", r)
	}
	if by, _ := pb.heard(200 * time.Millisecond); by[0xa] < 5 {
		t.Fatalf("relay not restored after the play: B got %v", by)
	}

	// A Record of the bridge (its mix), stopped by the user.
	f.cfg.Media.RecordDir = t.TempDir()
	op, err = f.Record("", br.ID, RecordParams{TermDigit: -1})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if done, err := f.StopMediaOperation("", op); err != nil || len(done) != 1 {
		t.Fatalf("%v %+v", err, done)
	}
	f.nextOp(t)
	if by, _ := pb.heard(200 * time.Millisecond); by[0xa] < 5 {
		t.Fatalf("relay not restored after the recording: B got %v", by)
	}

	// A lone connection hears a tone, then nothing once it ends.
	pc := newPhone(t, 0xc)
	c, err := f.CreateConnection(ConnectionParams{Remote: pc.addr(), Codec: "PCMA", Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	op, err = f.PlayTone(c.ID, "", ToneParams{Freq1: 440, Level1: -10, Level2: audio.Off, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if by, _ := pc.heard(150 * time.Millisecond); len(by) != 1 {
		t.Fatalf("lone connection heard %v", by)
	}
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermEOD || r.ConferenceID != "" {
		t.Fatalf("%+v", r)
	}
	pc.heard(60 * time.Millisecond) // what was sent before the end
	if by, _ := pc.heard(150 * time.Millisecond); len(by) != 0 {
		t.Fatalf("lone connection still sent to after the tone: %v", by)
	}

	// A join takes the lent mixer back: the play ends with autostop.
	op, err = f.PlayTone(c.ID, "", ToneParams{Freq1: 440, Level1: -10, Level2: audio.Off})
	if err != nil {
		t.Fatal(err)
	}
	cid, _ := f.conference(t, "lentjoin", 2)
	if _, err := f.JoinConference(cid, c.ID, MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermAutoStop {
		t.Fatalf("%+v", r)
	}

	// What cannot be mixed is refused with 27.
	d, err := f.CreateConnection(ConnectionParams{Remote: remote, Codec: "G722", Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.PlayTone(d.ID, "", ToneParams{Freq1: 440, Level1: -10, Level2: audio.Off}); ResultCode(err) != 27 {
		t.Errorf("G722 leg: %v", err)
	}
	e, err := f.CreateConnection(ConnectionParams{Remote: remote, Codec: "PCMU", Mode: ModeLoopback, Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.SendDigits(e.ID, "1", ""); ResultCode(err) != 27 {
		t.Errorf("loopback leg: %v", err)
	}
	f.mu.Lock()
	for _, x := range f.conns {
		if x.lent != nil {
			t.Errorf("connection %s still has a lent mixer", x.ID)
		}
	}
	f.mu.Unlock()
}

// A GatherDigits on a leg without telephone-events hears in-band DTMF,
// relayed or alone.
func TestGatherInbandUnmixed(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1100, testPortMin+1119)
	pa, pb := newPhone(t, 0xa), newPhone(t, 0xb)
	a, _ := f.CreateConnection(ConnectionParams{Remote: pa.addr(), Codec: "PCMU", Owner: FrontHTTP})
	b, _ := f.CreateConnection(ConnectionParams{Remote: pb.addr(), Codec: "PCMU", Owner: FrontHTTP})
	if _, err := f.Bridge(a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	op, err := f.GatherDigits(a.ID, GatherParams{MaxDigits: 2, TermDigit: -1, MaxTime: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dtmf := audio.NewDTMFSource([]byte{4, 11}, 100, 100)
	pa.src = func(pcm []int16) { dtmf.Read(pcm) }
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { pace(stop, map[*phone]netip.AddrPort{pa: a.Local, pb: b.Local}); close(done) }()
	defer func() { close(stop); <-done }()
	r := f.nextOp(t)
	if r.OperationID != op || r.Digits != "4#" || r.TerminationCondition != TermMaxDigits {
		t.Fatalf("%+v", r)
	}
	if by, _ := pb.heard(200 * time.Millisecond); by[0xa] < 5 {
		t.Fatalf("relay not restored after the gather: B got %v", by)
	}
}

// With media.inband_dtmf always (the default) a relayed G.711 leg without
// telephone-events is searched on its packets: its digits are announced
// and buffered before any gather asks; the relay goes on untouched. With
// gather, nothing listens until a GatherDigits runs.
func TestInbandOnRelayedLegs(t *testing.T) {
	for _, mode := range []string{InbandAlways, InbandGather} {
		t.Run(mode, func(t *testing.T) {
			lo := testPortMin + 1120
			if mode == InbandGather {
				lo += 10
			}
			f := newFixture(t, DefaultResources(), lo, lo+9)
			f.cfg.Media.InbandDTMF = mode
			pa, pb := newPhone(t, 0xa), newPhone(t, 0xb)
			a, _ := f.CreateConnection(ConnectionParams{Remote: pa.addr(), Codec: "PCMU", Owner: FrontHTTP})
			b, _ := f.CreateConnection(ConnectionParams{Remote: pb.addr(), Codec: "PCMU", Owner: FrontHTTP})
			if _, err := f.Bridge(a.ID, b.ID); err != nil {
				t.Fatal(err)
			}
			dtmf := audio.NewDTMFSource([]byte{7, 10}, 100, 100)
			pa.src = func(pcm []int16) { dtmf.Read(pcm) }
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { pace(stop, map[*phone]netip.AddrPort{pa: a.Local}); close(done) }()
			var keys []byte
			deadline := time.After(1500 * time.Millisecond)
		wait:
			for {
				select {
				case ev := <-f.events:
					if ev.Type == DigitReceived && !ev.DigitEnd && ev.Connection.ID == a.ID {
						keys = append(keys, "0123456789*#ABCD"[ev.Digit])
					}
				case <-deadline:
					break wait
				}
			}
			close(stop)
			<-done
			if by, _ := pb.heard(100 * time.Millisecond); mode == InbandAlways && by[0xa] == 0 {
				t.Fatalf("B heard %v: the relay stopped", by)
			}
			want := "7*"
			if mode == InbandGather {
				want = ""
			}
			if string(keys) != want {
				t.Fatalf("digits announced: %q, want %q", keys, want)
			}
			if mode == InbandAlways {
				op, err := f.GatherDigits(a.ID, GatherParams{MaxDigits: 2, TermDigit: -1})
				if err != nil {
					t.Fatal(err)
				}
				if r := f.nextOp(t); r.OperationID != op || r.Digits != "7*" {
					t.Fatalf("gather of the buffered digits: %+v", r)
				}
			}
		})
	}
}

// A two-party conference that is hairpinned (its packets relayed, no mix)
// still hears in-band digits: the member's detector gets the packets it
// relays.
func TestInbandHairpinnedConference(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1170, testPortMin+1179)
	pa, pb := newPhone(t, 0xa), newPhone(t, 0xb)
	a, _ := f.CreateConnection(ConnectionParams{Remote: pa.addr(), Codec: "PCMU", Owner: FrontHTTP})
	b, _ := f.CreateConnection(ConnectionParams{Remote: pb.addr(), Codec: "PCMU", Owner: FrontHTTP})
	if _, err := f.CreateConference("hp", KindConference, a.ID, MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.JoinConference("hp", b.ID, MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	if cf, _ := f.Conference("hp"); cf.Mixing {
		t.Fatal("two PCMU members are not hairpinned")
	}
	op, err := f.GatherDigits(a.ID, GatherParams{MaxDigits: 2, TermDigit: -1, MaxTime: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dtmf := audio.NewDTMFSource([]byte{5, 8}, 100, 100)
	pa.src = func(pcm []int16) { dtmf.Read(pcm) }
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { pace(stop, map[*phone]netip.AddrPort{pa: a.Local, pb: b.Local}); close(done) }()
	defer func() { close(stop); <-done }()
	if r := f.nextOp(t); r.OperationID != op || r.Digits != "58" {
		t.Fatalf("%+v", r)
	}
	if cf, _ := f.Conference("hp"); cf.Mixing {
		t.Fatal("the digits unhairpinned the conference")
	}
}
