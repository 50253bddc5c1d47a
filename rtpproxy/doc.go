// Package rtpproxy owns the media ports: it hands out RTP/RTCP port pairs
// from a configured range, and relays, echoes or hands over the RTP that
// arrives on them.
//
// A Leg is one port pair facing one remote endpoint. On Linux its RTP and
// RTCP sockets are read by one of the Pool's poller goroutines (one per
// GOMAXPROCS, each with a level-triggered epoll set of its legs, parked on
// Go's netpoller; see poll_linux.go), which owns the leg's receive-side
// state; elsewhere, and for comparison, a reader goroutine per socket does.
// On Linux a closed leg's pair stays bound and in its poller's epoll set,
// idle, until a later Open picks it (at random among all free pairs, as an
// unbound one would be); what arrives meanwhile is thrown away. Pool.Close
// unbinds the idle pairs and stops the pollers once no leg is open.
// The control side
// (SetRemote, SetDirection, SetHandler, Relay) swaps immutable values through
// atomic pointers, so the per-packet path takes no lock, does not log and
// allocates nothing. Remotes are latched symmetrically (RFC 4961 style), but
// only to a source signalling allowed (the SDP address, or any port of the
// signalling source's IP; see latch.go); with strict_source, later packets
// are accepted only from it. Packets thrown away are counted by reason (Drops).
// A leg keyed with SetSRTP (SDES, srtp.go) decrypts SRTP/SRTCP before
// anything else sees a packet (a packet latches only once authenticated)
// and encrypts what it sends, so SRTP and plain legs relay and mix freely.
//
// Statistics follow RFC 3550: octets count payload only, loss comes from
// extended sequence numbers (appendix A.1), jitter is the interarrival
// jitter of appendix A.8 computed in nanoseconds, and latency is the mean
// round-trip time from reception reports that answer a sender report this
// leg forwarded (arrival - forwarded - DLSR).
package rtpproxy
