package jsonw

import (
	"encoding/json"
	"testing"
)

// What String writes reads back as the string it was given.
func TestString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "ctl\x00\x01\n\t\x1f", "utf8 é ☎", "<sip:a@b>;tag=x"} {
		var got string
		if err := json.Unmarshal(String(nil, s), &got); err != nil || got != s {
			t.Fatalf("%q: %s read back as %q (%v)", s, String(nil, s), got, err)
		}
	}
}

func TestFields(t *testing.T) {
	b := Field(nil, "a", true)
	b = append(b, '1')
	b = StringField(b, "s", "x")
	b = UintField(b, "u", 7)
	b = IntField(b, "i", -3)
	b = BoolField(b, "t", true)
	b = append(b, '}')
	var got struct {
		A int
		S string
		U uint64
		I int64
		T bool
	}
	if err := json.Unmarshal(b, &got); err != nil || got.A != 1 || got.S != "x" || got.U != 7 || got.I != -3 || !got.T {
		t.Fatalf("%s: %+v %v", b, got, err)
	}
}
