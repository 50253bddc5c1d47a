// Command gateway runs the mediagw media gateway controller: SIP, MGCP and
// HTTP control fronts over one session table, an RTP proxy and a conference
// mixer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/mediagw/mediagw/ctl"
)

// gcPercent is the default of runtime.gc_percent.
const gcPercent = 400

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ctl" {
		os.Exit(ctl.Main(os.Args[2:], os.Stdout, os.Stderr, os.Getenv))
	}
	configPath := flag.String("config", "", "YAML configuration file (default: built-in defaults)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	checkOnly := flag.Bool("check-config", false, "load and validate the configuration, then exit")
	checkStateOnly := flag.Bool("check-state", false, "open the configured state store read-only, print what it holds, then exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file until exit")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gateway: unexpected arguments: %v\n", flag.Args())
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println("mediagw", versionString())
		return
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway: config:", err)
		os.Exit(2)
	}
	if *checkOnly {
		fmt.Println("configuration ok")
		return
	}
	if *checkStateOnly {
		if err := checkState(cfg.State, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "gateway: state:", err)
			os.Exit(1)
		}
		return
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gateway: cpuprofile:", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, stopReleasing := releaseOnSignal(ctx, syscall.SIGUSR1)
	err = run(ctx, cfg, nil)
	stopReleasing()
	stop()
	pprof.StopCPUProfile() // no-op without -cpuprofile
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
