package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mediagw/mediagw/store"
)

// maxListedIDs bounds the ids printed per kind.
const maxListedIDs = 50

// checkState opens the configured state read-only and prints what it holds:
// where it is, the counters' high-water marks, and per kind the number of
// objects and their ids. It claims nothing, so it never takes the state
// from a gateway; a gateway holding the file makes it fail with "locked".
func checkState(cfg store.Config, out io.Writer) error {
	switch cfg.Store {
	case store.KindNone:
		fmt.Fprintln(out, "state.store: none: no state is kept")
		return nil
	case store.KindFile:
		fmt.Fprintf(out, "state: file %s\n", cfg.Path)
	case store.KindRedis:
		fmt.Fprintf(out, "state: redis %s db %d prefix %q\n", cfg.Redis.Addr, cfg.Redis.DB, cfg.Redis.Prefix)
	}
	st, err := store.Open(cfg, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(out, "empty: %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer st.Close()
	marks, err := st.Counters()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(marks))
	for n := range marks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "counter %s: %d (the next id is above it)\n", n, marks[n])
	}
	kinds, err := st.Kinds()
	if err != nil {
		return err
	}
	if len(kinds) == 0 {
		fmt.Fprintln(out, "no objects")
	}
	var bad []error
	for _, k := range kinds {
		var ids []string
		err := st.ForEach(k, func(id string, _ []byte) error {
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				return err
			}
			bad = append(bad, err)
		}
		sort.Strings(ids)
		n, more := len(ids), ""
		if len(ids) > maxListedIDs {
			more = fmt.Sprintf(" ... (%d more)", len(ids)-maxListedIDs)
			ids = ids[:maxListedIDs]
		}
		fmt.Fprintf(out, "%s: %d: %s%s\n", k, n, strings.Join(ids, " "), more)
	}
	return errors.Join(bad...)
}
