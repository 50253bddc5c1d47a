// Package ng speaks rtpengine's ng control protocol, so a SIP proxy's
// rtpengine module (Kamailio, OpenSIPS) can use mediagw as its media relay
// unchanged. Each UDP datagram is "<cookie> <bencoded dictionary>"; the
// reply echoes the cookie. Files:
//
//   - bencode.go: the codec (a reused Decoder allocates nothing; strings
//     alias the datagram), message.go: a command dictionary → Request;
//   - cache.go: replies kept 30 s per (source, cookie), so a retransmitted
//     command gets the same bytes and runs once;
//   - commands.go: the command table (ping, offer, answer, delete, query,
//     list, statistics; the media commands answer "not supported yet");
//   - call.go: calls by call-id, dialogs by from-tag/to-tag and via-branch;
//   - sdp.go: the SDP rewrite; codes.go: every result and error-reason.
//
// An offer creates, per relayed m= section, two session connections (one
// facing the offerer, one facing the answerer) bridged in the session
// table (Table.Bridge): a kind-bridge conference that the HTTP API lists and
// can release. Re-offers from either side (hold, new
// address, codec change) and answers are ModifyConnection of the same
// connections. A delete (whole call, one tag, one via-branch) releases them
// through DeleteConnection after `delete delay` (ng.delete_delay, 30 s as
// rtpengine's --delete-delay; the command's key overrides) and answers with
// the call's statistics as `query` does. A release by
// anyone else (HTTP, MGCP, media timeout, shutdown) releases the other leg
// too and drops the call. Our connections' mode is the inverse of the SDP
// direction of the endpoint they face (a=sendonly from A: we only receive
// from A), so hold is honoured on the relay.
//
// A gateway that is draining (POST /v1/drain) or out of ports answers an
// offer for a new call with result "load limit" when the client said it
// supports that (Kamailio's module does, and sets the call up on the next
// relay of its set); calls in progress go on.
//
// Only sources in ng.allow (default loopback) are answered; others are
// dropped and counted, as MGCP's call_agents are (rtpengine has no such
// list and relies on the listen address).
//
// Deliberate differences from rtpengine 10.5 (TestSameScriptAsRTPengine
// runs one script against both; everything not listed agrees, SDP included
// modulo port numbers):
//
//	| what                         | rtpengine 10.5                          | mediagw                                                       |
//	|------------------------------|-----------------------------------------|---------------------------------------------------------------|
//	| transports                   | UDP, TCP, WebSocket, HTTP               | UDP only (ng.listen udp://)                                   |
//	| query/delete "SSRC"          | per-SSRC statistics                     | absent                                                        |
//	| stream "stats.bytes"         | whole RTP packets                       | RTP payload octets (RFC 3550); packets agree                  |
//	| RTCP                         | a second stream per media, totals.RTCP  | relayed on port+1, not listed or counted                      |
//	| stream "errors"              | forwarding errors                       | absent                                                        |
//	| media "flags"                | initialized, send, recv, ICE ...        | initialized, and send/recv from the endpoint's SDP direction  |
//	| ICE                          | own candidates (default), ICE=force ... | always removed (no ICE agent); other ICE= values logged        |
//	| RTP/AVP ↔ RTP/SAVP, DTLS     | translates                              | passed through; a transport-protocol needing crypto is logged |
//	| transcoding, codec offer     | transcodes                              | none: codec offer of an absent codec is logged and ignored    |
//	| codec mask                   | masked toward the peer, accepted        | removed from the SDP sent on, like strip (media is untouched) |
//	| static payload types         | adds a missing a=rtpmap                 | leaves the SDP's own lines                                    |
//	| statistics                   | ~150 figures                            | sessions own/foreign/total, transcodedmedia, managed, regular/forced/timeout terminations, call durations |
//	| direction / interface        | logical interfaces                      | one (rtp.external_ip): logged and ignored                     |
//	| asymmetric                   | no latching                             | always latches (rtp.strict_source)                            |
//	| list                         | hash order                              | sorted                                                        |
//	| play/stop media              | any ffmpeg format, file/blob/db-id      | WAV under media.dir (file only); the file from-tag (or all) hears; reply duration |
//	| play DTMF                    | needs "inject DTMF" on offer and answer | always available; queues behind the DTMF being sent; ticks of 20 ms |
//	| start/stop recording         | recording daemon, metadata, per-stream  | the stream's two parties mixed, one WAV per audio stream in media.record_dir |
//	| block/unblock DTMF/media, pause recording, publish, subscribe, ... | executes | result error, "'<command>' is not supported by mediagw yet" |
//	| bad field types              | varies                                  | result error, "Invalid request: key ... must be ..."          |
//	| media timeout                | --timeout per call; --offer-timeout for unanswered calls | rtp.media_timeout per bridge, answered or not (a call ringing longer than it without early media is released) |
//
// Every other key or flag is logged at debug and ignored, never refused: a
// refusal would make the proxy module retry. A codec other than PCMU/PCMA
// holds an enhanced_rtp resource, as on every front (session table rule).
package ng
