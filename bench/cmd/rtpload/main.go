// Command rtpload measures a system under test (SUT) that relays RTP or
// answers MGCP, for bench/peers.sh.
//
//	rtpload relay   -driver mgcp|rtpengine|loop -ctl ADDR -calls N -rates R1,R2,... [-recover R] -pid SUTPID
//	rtpload mgcptps -ctl ADDR -wildcard 'rtpbridge/*@mgw' -conc C -dur D -pid SUTPID
//	rtpload ngtps   -ctl ADDR -load 1000 -conc C -dur D -pid SUTPID
//
// relay sets up N calls through the SUT's control protocol, then sends paced
// RTP (12-byte header + 160-byte G.711 payload; each payload carries the step
// number, stream, sequence and send time) through the SUT at each offered
// rate in turn and reports, per step: what arrived (loss, late arrivals
// counted against their own step, reordering, added latency p50/p99), the
// SUT's CPU time from /proc/PID/stat, and the generator's own limits. With N
// calls and R pps each stream sends R/N packets per second (50 pps, i.e. real
// 20 ms pacing, at R = 50·N).
//
// Output is "name=value" lines; the last ones start with "result_".
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "relay":
		err = relayMain(os.Args[2:])
	case "mgcptps":
		err = tpsMain(os.Args[2:])
	case "ngtps":
		err = ngtpsMain(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtpload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: rtpload relay|mgcptps|ngtps [flags]  (-h for flags)")
	os.Exit(2)
}
