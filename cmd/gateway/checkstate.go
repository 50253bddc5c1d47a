package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mediagw/mediagw/store"
)

// maxListedIDs bounds the ids printed per kind; maxShown the records
// printed whole (each cut to maxShownBytes).
const (
	maxListedIDs  = 50
	maxShown      = 20
	maxShownBytes = 240
)

// checkState opens the configured state read-only and prints what it holds:
// where it is, the counters' high-water marks, per kind the number of
// objects and their ids, then the first records of each kind as stored
// (what a start would restore: connections, conferences, SIP dialogs, MGCP
// connections and requests, running operations). It claims nothing, so it never takes the state
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
		vals := map[string]string{}
		err := st.ForEach(k, func(id string, v []byte) error {
			ids = append(ids, id)
			if len(v) > maxShownBytes {
				v = append(v[:maxShownBytes:maxShownBytes], "..."...)
			}
			vals[id] = string(v)
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
		for _, id := range ids[:min(len(ids), maxShown)] {
			fmt.Fprintf(out, "  %s %s\n", id, vals[id])
		}
	}
	return errors.Join(bad...)
}
