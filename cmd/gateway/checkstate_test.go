package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/store"
)

func TestCheckState(t *testing.T) {
	cfg := store.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "mediagw.state")

	var out bytes.Buffer
	if err := checkState(cfg, &out); err != nil || !strings.Contains(out.String(), "does not exist") {
		t.Fatalf("no file: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(cfg.Path); err == nil {
		t.Fatal("-check-state created the state file")
	}

	st, err := store.Open(cfg, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 60; i++ {
		st.Put("conn", fmt.Sprintf("%03d", i), []byte("x"))
	}
	st.Put("conf", "room1", []byte("y"))
	if _, err := st.Next("conn"); err != nil {
		t.Fatal(err)
	}
	// While a gateway holds the file, -check-state says so and takes nothing.
	out.Reset()
	if err := checkState(cfg, &out); !errors.Is(err, store.ErrOwned) {
		t.Fatalf("while held: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := checkState(cfg, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log("\n" + got)
	for _, want := range []string{
		"state: file " + cfg.Path,
		"counter conn: 1024",
		"conf: 1: room1\n",
		"conn: 60: 001 002 ",
		" 050 ... (10 more)\n",
		"  001 x\n",
		"  room1 y\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	cfg.Store = store.KindNone
	out.Reset()
	if err := checkState(cfg, &out); err != nil || !strings.Contains(out.String(), "none") {
		t.Fatalf("store none: %v %q", err, out.String())
	}
}
