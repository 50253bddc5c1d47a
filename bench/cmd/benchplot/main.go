// Command benchplot draws what the benchmarks measured, as PNG files beside
// their results (issue "performance, second round"):
//
//	benchplot -out DIR relay RUNDIR     loss and p99 added latency against the
//	                                    offered rate, per system, from the
//	                                    <system>-relay-{ramp,refine,overload}.txt
//	                                    files of a bench/peers.sh run
//	benchplot -out DIR conference FILE  CPU per member-second and late ticks
//	                                    against the number of legs, from the
//	                                    output of bench/conference
//
// It only reads the text the benchmarks print; it measures nothing itself.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("out", ".", "directory the PNG files are written to")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: benchplot [-out DIR] relay RUNDIR | conference FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	var files []string
	var err error
	switch flag.Arg(0) {
	case "relay":
		files, err = plotRelay(flag.Arg(1), *out)
	case "conference":
		files, err = plotConference(flag.Arg(1), *out)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}
