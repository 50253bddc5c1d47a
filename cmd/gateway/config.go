package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mediagw/mediagw/cluster"
	"github.com/mediagw/mediagw/control"
	"github.com/mediagw/mediagw/mgcp"
	"github.com/mediagw/mediagw/ng"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
	"github.com/mediagw/mediagw/sip"
	"github.com/mediagw/mediagw/store"
)

// LogConfig is the yaml section `log`.
type LogConfig struct {
	Level  string `yaml:"level"`  // trace, debug, info, warn, error
	Format string `yaml:"format"` // text | json
}

// Config is the whole gateway configuration (DESIGN §6). Each section's
// struct lives with the package it configures.
type Config struct {
	Log        LogConfig                `yaml:"log"`
	SIP        sip.Config               `yaml:"sip"`
	MGCP       mgcp.Config              `yaml:"mgcp"`
	RTP        rtpproxy.Config          `yaml:"rtp"`
	Resources  session.Resources        `yaml:"resources"`
	Conference session.ConferenceConfig `yaml:"conference"`
	Media      session.MediaConfig      `yaml:"media"`
	Routes     []sip.Route              `yaml:"routes"`
	HTTP       control.Config           `yaml:"http"`
	State      store.Config             `yaml:"state"`
	NG         ng.Config                `yaml:"ng"`
	Cluster    cluster.Config           `yaml:"cluster"`
	Runtime    RuntimeConfig            `yaml:"runtime"`
}

// defaultConfig is the built-in configuration: what `go run ./cmd/gateway`
// runs with, and what every key of a file starts from.
func defaultConfig() Config {
	return Config{
		Log:        LogConfig{Level: "info", Format: "text"},
		SIP:        sip.DefaultConfig(),
		MGCP:       mgcp.DefaultConfig(),
		RTP:        rtpproxy.DefaultConfig(),
		Resources:  session.DefaultResources(),
		Conference: session.DefaultConferenceConfig(),
		Media:      session.DefaultMediaConfig(),
		Routes:     sip.DefaultRoutes(),
		HTTP:       control.DefaultConfig(),
		State:      store.DefaultConfig(),
		NG:         ng.DefaultConfig(),
		Cluster:    cluster.DefaultConfig(),
		Runtime:    defaultRuntimeConfig(),
	}
}

// loadConfig reads a YAML file over the defaults. Unknown keys and bad
// values are errors that name the key.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, cfg.validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := decodeConfig(data, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func decodeConfig(data []byte, cfg *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return nil // empty file: all defaults
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the configuration must be a mapping of sections", doc.Line)
	}
	lines := map[int]string{}
	if err := checkKeys(doc, reflect.TypeOf(*cfg), "", lines); err != nil {
		return err
	}
	// A file that sets `routes` replaces the default list rather than
	// merging into it element by element.
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "routes" {
			cfg.Routes = nil
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		// Name the key on each "line N:" the decoder reports.
		msg = lineRe.ReplaceAllStringFunc(msg, func(m string) string {
			n, _ := strconv.Atoi(lineRe.FindStringSubmatch(m)[1])
			if key, ok := lines[n]; ok {
				return fmt.Sprintf("%s (line %d):", key, n)
			}
			return m
		})
		return errors.New(msg)
	}
	return nil
}

var lineRe = regexp.MustCompile(`line (\d+):`)

// checkKeys walks a YAML mapping against the struct type it decodes into,
// failing on the first unknown key with its dotted path and line, and
// recording each key's line for later error messages.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if path != "" {
				key = path + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: unknown key %q", k.Line, key)
			}
			lines[k.Line] = key
			lines[v.Line] = key
			if err := checkKeys(v, ft, key, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			key := fmt.Sprintf("%s[%d]", path, i)
			lines[item.Line] = key
			if err := checkKeys(item, t.Elem(), key, lines); err != nil {
				return err
			}
		}
	}
	return nil
}

type validator interface{ Validate() error }

func (c Config) validate() error {
	switch strings.ToLower(c.Log.Level) {
	case "trace", "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of trace, debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	for _, v := range []any{c.SIP, c.MGCP, c.RTP, c.Resources, c.Conference, c.Media, c.HTTP, c.State, c.NG, c.Cluster} {
		if val, ok := v.(validator); ok {
			if err := val.Validate(); err != nil {
				return err
			}
		}
	}
	if err := validateMGCP(c.MGCP); err != nil {
		return err
	}
	if err := c.Runtime.validate(); err != nil {
		return err
	}
	return validateRoutes(c.Routes)
}

// validateMGCP checks the `mgcp` section.
func validateMGCP(m mgcp.Config) error {
	if _, _, err := splitListen("mgcp.listen", m.Listen); err != nil {
		return err
	}
	if !strings.HasPrefix(m.Listen, "udp://") {
		return fmt.Errorf("mgcp.listen: %q: MGCP runs over udp://", m.Listen)
	}
	if m.Domain == "" {
		return fmt.Errorf("mgcp.domain: must not be empty")
	}
	if m.ResponseCache.MaxEntries < 0 || m.ResponseCache.MaxBytes < 0 {
		return fmt.Errorf("mgcp.response_cache: bounds must be >= 0 (0 = none)")
	}
	for i, ca := range m.CallAgents {
		if _, err := netip.ParsePrefix(ca); err != nil {
			if _, err := netip.ParseAddr(ca); err != nil {
				return fmt.Errorf("mgcp.call_agents[%d]: %q is not a CIDR or an address", i, ca)
			}
		}
	}
	if m.NotifiedEntity != "" {
		if _, _, err := net.SplitHostPort(m.NotifiedEntity); err != nil {
			return fmt.Errorf("mgcp.notified_entity: %q is not host:port", m.NotifiedEntity)
		}
	}
	return nil
}

// validateRoutes checks the `routes` list before the SIP front compiles it.
func validateRoutes(routes []sip.Route) error {
	for i, r := range routes {
		key := fmt.Sprintf("routes[%d]", i)
		if _, err := regexp.Compile(r.Match); err != nil || r.Match == "" {
			return fmt.Errorf("%s.match: %q is not a regular expression", key, r.Match)
		}
		for j, a := range r.Allow {
			if _, err := netip.ParsePrefix(a); err != nil {
				if _, err := netip.ParseAddr(a); err != nil {
					return fmt.Errorf("%s.allow[%d]: %q is not a CIDR or an address", key, j, a)
				}
			}
		}
		switch r.Action {
		case "conference", "echo":
		case "bridge":
			if r.Target == "" {
				return fmt.Errorf("%s.target: required for action bridge", key)
			}
		case "reject":
			if r.Code != 0 && (r.Code < 400 || r.Code > 699) {
				return fmt.Errorf("%s.code: %d is not a SIP failure status (400-699)", key, r.Code)
			}
		default:
			return fmt.Errorf("%s.action: %q is not one of conference, bridge, echo, reject", key, r.Action)
		}
	}
	return nil
}
