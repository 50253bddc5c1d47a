// Package confbridge mixes conference audio.
//
// An Engine runs the mix schedule for every bridge: a few shard goroutines
// (GOMAXPROCS by default) each tick their bridges every ptime at an absolute
// schedule; a tick that starts late is counted (LateTicks). A Bridge is one
// conference. Each Member receives RTP through HandleRTP (set it as the
// leg's handler), which validates the packet and writes its payload into the
// member's jitter buffer (reorder, duplicates, loss concealment, SSRC
// changes and timestamp jumps) under a per-member lock. Each tick takes one
// frame from every member, detects talkers by level with hang-over, decodes
// only the talkers (G.711 by table), sums them once in 32 bits, and sends
// each member its own RTP stream: talkers get the sum minus their own
// signal, everyone else of one codec shares a single encoded mix (silence
// costs no encode at all), all saturated to 16 bits.
//
// With Options.Hairpin a bridge of two members with the same codec relays
// their packets directly, rewriting SSRC, sequence numbers and timestamps
// onto each member's outgoing stream so a switch between relay and mixer is
// seamless. RFC 4733 telephone-events are never mixed; they are reported
// through Options.OnDigit.
//
// Nothing on the per-packet or per-tick path allocates or logs.
package confbridge
