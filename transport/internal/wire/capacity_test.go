package wire

import (
	"bytes"
	"testing"
)

func TestCapacityMsgRoundTrips(t *testing.T) {
	m := CapacityMsg{JSON: []byte(`{"gpus":[{"device":0}]}`)}
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back CapacityMsg
	if err := back.Decode(b); err != nil || !bytes.Equal(back.JSON, m.JSON) {
		t.Fatalf("%q, %v", back.JSON, err)
	}
	for n := range len(b) {
		if err := back.Decode(b[:n]); err == nil {
			t.Fatalf("a capacity cut to %d of %d bytes decoded", n, len(b))
		}
	}
	if err := back.Decode(append(b, 0)); err == nil {
		t.Fatal("a capacity with a trailing byte decoded")
	}
	if _, err := (&CapacityMsg{JSON: make([]byte, MaxCapacity+1)}).Append(nil); err == nil {
		t.Fatal("a capacity past MaxCapacity encoded")
	}
}
