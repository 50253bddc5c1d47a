package ctl

import (
	"flag"
	"io"
	"strings"
)

// targetParams reads "conf:ID" (a whole conference) or a ConnectionId.
func targetParams(arg string) map[string]string {
	if id, ok := strings.CutPrefix(arg, "conf:"); ok {
		return map[string]string{"ConferenceId": id}
	}
	return map[string]string{"ConnectionId": arg}
}

// play TARGET PROMPT [PROMPT [PROMPT]]: Play files under media.dir.
func play(c *client, args []string) (int, error) {
	fs := flag.NewFlagSet("play", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	digit := fs.String("digit", "", "a key that stops the play")
	maxTime := fs.String("max", "", "stop after this many ms")
	if err := fs.Parse(args); err != nil {
		return ExitUsage, usageError("play: " + err.Error())
	}
	if fs.NArg() < 2 || fs.NArg() > 4 {
		return ExitUsage, usageError("play takes TARGET PROMPT [PROMPT [PROMPT]] (TARGET: CONNID or conf:CONFID)")
	}
	p := targetParams(fs.Arg(0))
	for i, name := range fs.Args()[1:] {
		p["Prompt"+string(rune('1'+i))] = name
	}
	if *digit != "" {
		p["TermCondDigit"] = *digit
	}
	if *maxTime != "" {
		p["TermCondMaxTime"] = *maxTime
	}
	answer, err := c.action("Play", p)
	if err != nil {
		return ExitTransport, err
	}
	return c.report("Play", answer)
}

// record TARGET [-file NAME] [-encoding pcm|ulaw|alaw] [-max MS] [-silence MS]:
// start a recording under media.record_dir; `stop` ends it.
func record(c *client, args []string) (int, error) {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("file", "", "file name under media.record_dir")
	enc := fs.String("encoding", "", "pcm (default), ulaw or alaw")
	maxTime := fs.String("max", "", "stop after this many ms")
	silence := fs.String("silence", "", "stop after this many ms of silence")
	if err := fs.Parse(args); err != nil {
		return ExitUsage, usageError("record: " + err.Error())
	}
	if fs.NArg() != 1 {
		return ExitUsage, usageError("record takes its flags, then one TARGET (CONNID or conf:CONFID)")
	}
	p := targetParams(fs.Arg(0))
	for k, v := range map[string]string{"Filename": *file, "AudioFileEncoding": *enc, "TermCondMaxTime": *maxTime, "TermCondSilence": *silence} {
		if v != "" {
			p[k] = v
		}
	}
	answer, err := c.action("Record", p)
	if err != nil {
		return ExitTransport, err
	}
	return c.report("Record", answer)
}

// stop OPID [CONNID]: StopMediaOperation.
func stopOp(c *client, args []string) (int, error) {
	if len(args) < 1 || len(args) > 2 {
		return ExitUsage, usageError("stop takes OPID [CONNID]")
	}
	p := map[string]string{"OperationId": args[0]}
	if len(args) == 2 {
		p["ConnectionId"] = args[1]
	}
	answer, err := c.action("StopMediaOperation", p)
	if err != nil {
		return ExitTransport, err
	}
	return c.report("StopMediaOperation", answer)
}

// digits CONNID KEYS: SendDigits.
func digits(c *client, args []string) (int, error) {
	if len(args) != 2 {
		return ExitUsage, usageError("digits takes CONNID KEYS")
	}
	answer, err := c.action("SendDigits", map[string]string{"ConnectionId": args[0], "Digits": args[1]})
	if err != nil {
		return ExitTransport, err
	}
	return c.report("SendDigits", answer)
}
