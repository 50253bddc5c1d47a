package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// configs/gateway.yaml must show every key, each with its built-in default.
func TestShippedConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig("../../configs/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("configs/gateway.yaml differs from the built-in defaults:\nfile:     %+v\ndefaults: %+v", cfg, want)
	}
	data, err := os.ReadFile("../../configs/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	var missing []string
	walkKeys(reflect.TypeOf(Config{}), "", func(key string) {
		if !hasKey(root.Content[0], strings.Split(key, ".")) {
			missing = append(missing, key)
		}
	})
	if len(missing) > 0 {
		t.Fatalf("configs/gateway.yaml does not show: %v", missing)
	}
}

// walkKeys calls fn with the dotted path of every struct key (not into lists).
func walkKeys(t reflect.Type, path string, fn func(string)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if path != "" {
			key = path + "." + name
		}
		fn(key)
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Duration" {
			walkKeys(f.Type, key, fn)
		}
	}
}

func hasKey(n *yaml.Node, path []string) bool {
	if len(path) == 0 {
		return true
	}
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == path[0] {
			return hasKey(n.Content[i+1], path[1:])
		}
	}
	return false
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "foo: 1\n", `unknown key "foo"`},
		{"unknown nested key", "sip:\n  bogus: 1\n", `unknown key "sip.bogus"`},
		{"unknown key in a route", "routes:\n  - {match: '^x$', action: echo, colour: 1}\n", `unknown key "routes[0].colour"`},
		{"bad duration", "rtp:\n  media_timeout: banana\n", "rtp.media_timeout"},
		{"bad port range", "rtp:\n  port_min: 30000\n  port_max: 20000\n", "rtp."},
		{"bad srtp mode", "rtp:\n  srtp: sometimes\n", "rtp.srtp"},
		{"negative relatch", "rtp:\n  relatch_after: -1s\n", "rtp.relatch_after"},
		{"strict_source not a bool", "rtp:\n  strict_source: maybe\n", "strict_source"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"bad log format", "log:\n  format: xml\n", "log.format"},
		{"negative resource", "resources:\n  rtp: -1\n", "resources.rtp"},
		{"bad ptime", "conference:\n  ptime: 7ms\n", "conference.ptime"},
		{"unmixable codec", "conference:\n  codecs: [G729]\n", "conference.codecs"},
		{"bad route action", "routes:\n  - {match: '^x$', action: fly}\n", "routes[0].action"},
		{"bad route regexp", "routes:\n  - {match: '(', action: echo}\n", "routes[0].match"},
		{"bridge without target", "routes:\n  - {match: '^x$', action: bridge}\n", "routes[0].target"},
		{"bad http listen", "http:\n  listen: nowhere\n", "http.listen"},
		{"bad call agent", "mgcp:\n  call_agents: [banana]\n", "mgcp.call_agents"},
		{"bad sip listen", "sip:\n  listen: [\"sctp://0.0.0.0:5060\"]\n", "sip.listen"},
		{"bad trusted CIDR", "sip:\n  trusted: [\"10.0.0.0/33\"]\n", "sip.trusted[0]"},
		{"missing users file", "sip:\n  users_file: /nonexistent/users\n", "sip.users_file"},
		{"realm with a quote", "sip:\n  realm: 'a\"b'\n", "sip.realm"},
		{"unknown digest algorithm", "sip:\n  auth_algorithms: [SHA-512-256]\n", "sip.auth_algorithms[0]"},
		{"negative nonce ttl", "sip:\n  nonce_ttl: -1s\n", "sip.nonce_ttl"},
		{"bad route allow", "routes:\n  - {match: '^x$', action: echo, allow: [\"nowhere\"]}\n", "routes[0].allow[0]"},
		{"not a mapping", "- 1\n- 2\n", "mapping"},
		{"bad ng listen", "ng:\n  listen: \"tcp://127.0.0.1:2223\"\n", "ng.listen"},
		{"negative ng delete delay", "ng:\n  delete_delay: -1s\n", "ng.delete_delay"},
		{"bad ng allow", "ng:\n  allow: [banana]\n", "ng.allow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/c.yaml"
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestRoutesInAFileReplaceTheDefaults(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("routes:\n  - {match: '^x$', action: reject, code: 486}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].Code != 486 {
		t.Fatalf("routes %+v", cfg.Routes)
	}
}

func TestEmptyFileIsTheDefaults(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, defaultConfig()) {
		t.Fatal("an empty file must give the defaults")
	}
}
