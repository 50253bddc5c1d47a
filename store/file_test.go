package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeState makes a real state file with n objects of kind conn.
func writeState(t *testing.T, path string, n int) {
	t.Helper()
	st, err := OpenFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		st.Put("conn", fmt.Sprintf("%06d", i), bytes.Repeat([]byte{byte('a' + i%26)}, 200))
	}
	if _, err := st.Next("conn"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// expectSetAside opens a damaged file: a usable empty store, the error says
// so, and the damaged bytes are kept under the aside name.
func expectSetAside(t *testing.T, path string) {
	t.Helper()
	damaged, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Read-only inspection reports it and moves nothing.
	if ro, err := OpenFile(path, Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
		if ro != nil {
			ro.Close()
		}
		t.Fatalf("read-only open of a damaged file: %v, want ErrCorrupt", err)
	}
	st, err := OpenFile(path, Options{})
	var aside *SetAsideError
	if !errors.As(err, &aside) || !errors.Is(err, ErrCorrupt) || st == nil {
		t.Fatalf("open of a damaged file: store %v, err %v; want a store and a SetAsideError", st, err)
	}
	t.Logf("%v", err)
	if !strings.HasPrefix(aside.Aside, path+".corrupt-") {
		t.Fatalf("aside name %q", aside.Aside)
	}
	kept, err := os.ReadFile(aside.Aside)
	if err != nil || !bytes.Equal(kept, damaged) {
		t.Fatalf("the damaged file was not kept as it was (%v)", err)
	}
	// The fresh store works and survives a reopen.
	if kinds, err := st.Kinds(); err != nil || len(kinds) != 0 {
		t.Fatalf("fresh store holds %v, %v", kinds, err)
	}
	st.Put("conn", "new", []byte("fresh"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenFile(path, Options{})
	if err != nil {
		t.Fatalf("reopening the fresh store: %v", err)
	}
	defer st.Close()
	if got := dump(t, st); !reflect.DeepEqual(got, map[string]map[string]string{"conn": {"new": "fresh"}}) {
		t.Fatalf("fresh store after reopen: %v", got)
	}
}

func TestFileCorrupt(t *testing.T) {
	tests := map[string]func(t *testing.T, path string){
		"garbage": func(t *testing.T, path string) {
			junk := make([]byte, 64<<10)
			rand.Read(junk)
			os.WriteFile(path, junk, 0o600)
		},
		"text": func(t *testing.T, path string) {
			os.WriteFile(path, []byte("this is not a database\n"), 0o600)
		},
		"truncated-half": func(t *testing.T, path string) {
			writeState(t, path, 3000)
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()/2)
		},
		"truncated-to-a-page": func(t *testing.T, path string) {
			writeState(t, path, 3000)
			os.Truncate(path, 4096)
		},
		"truncated-last-page": func(t *testing.T, path string) {
			// Cut the last page in use (the file's tail past it is
			// preallocated space, which may go without harm).
			writeState(t, path, 3000)
			db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			var used int64
			db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
			db.Close()
			os.Truncate(path, used-4096)
		},
		"truncated-100-bytes": func(t *testing.T, path string) {
			writeState(t, path, 10)
			os.Truncate(path, 100)
		},
		"meta-pages-zeroed": func(t *testing.T, path string) {
			writeState(t, path, 100)
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt(make([]byte, 8192), 0)
			f.Close()
		},
	}
	for name, damage := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mediagw.state")
			damage(t, path)
			expectSetAside(t, path)
		})
	}
}

// A value whose bytes changed on disk fails its checksum: the other records
// are still restored, and the error names the bad one.
func TestFileRecordChecksum(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mediagw.state")
	st, err := OpenFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Put("conn", "good1", []byte("first good value"))
	st.Put("conn", "bad", []byte("MARKER-flip-me-MARKER"))
	st.Put("conn", "good2", []byte("second good value"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	i := bytes.Index(data, []byte("flip-me"))
	if i < 0 {
		t.Fatal("marker not found in the file")
	}
	data[i] ^= 0x20
	os.WriteFile(path, data, 0o600)

	st, err = OpenFile(path, Options{})
	if err != nil {
		t.Fatalf("a bad record is not a bad file: %v", err)
	}
	defer st.Close()
	got := map[string]string{}
	err = st.ForEach("conn", func(id string, v []byte) error { got[id] = string(v); return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "conn/bad") {
		t.Fatalf("ForEach over a flipped record: %v", err)
	}
	if want := map[string]string{"good1": "first good value", "good2": "second good value"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
}

func TestFileSchema(t *testing.T) {
	t.Run("newer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "mediagw.state")
		writeState(t, path, 5)
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
		})
		db.Close()
		before, _ := os.ReadFile(path)
		st, err := OpenFile(path, Options{})
		if !errors.Is(err, ErrSchema) || st != nil {
			t.Fatalf("open of a newer schema: %v, %v; want ErrSchema", st, err)
		}
		t.Logf("%v", err)
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatal("the file of a newer schema was changed")
		}
		if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
			t.Fatalf("a newer schema was set aside as corrupt: %v", m)
		}
	})
	t.Run("foreign-bbolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error {
			b, _ := tx.CreateBucket([]byte("someone-elses"))
			return b.Put([]byte("k"), []byte("v"))
		})
		db.Close()
		if st, err := OpenFile(path, Options{}); !errors.Is(err, ErrSchema) {
			if st != nil {
				st.Close()
			}
			t.Fatalf("open of another program's bbolt file: %v, want ErrSchema", err)
		}
		if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
			t.Fatalf("another program's file was moved: %v", m)
		}
	})
	t.Run("missing-dir", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "dir", "mediagw.state")
		if st, err := OpenFile(path, Options{}); err == nil || errors.Is(err, ErrCorrupt) {
			if st != nil {
				st.Close()
			}
			t.Fatalf("open in a missing directory: %v; want a plain error", err)
		}
	})
}

// A key the file held when it was opened is known to exist: put again and
// deleted before the next commit, its Delete still reaches the file.
func TestFileDeleteOfRestoredKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := OpenFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Put("conn", "7", []byte("old"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenFile(path, Options{GroupDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.Put("conn", "7", []byte("new")) // restored and saved again...
	st.Delete("conn", "7")             // ...and released, within one batch
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenFile(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_ = ro.ForEach("conn", func(id string, v []byte) error {
		t.Fatalf("conn %s = %q came back", id, v)
		return nil
	})
}
