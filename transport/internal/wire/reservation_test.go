package wire

import (
	"strings"
	"testing"
)

func TestReservationMsgRoundTrips(t *testing.T) {
	for _, m := range []ReservationMsg{
		{Node: "rack1-b", Addr: "10.0.0.12:7443", Reservation: "pool-0123456789abcdef"},
		{Reservation: "pool-0123456789abcdef"}, // a claim
	} {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		var back ReservationMsg
		if err := back.Decode(b); err != nil || back != m {
			t.Fatalf("%+v, %v", back, err)
		}
		for n := range len(b) {
			if err := back.Decode(b[:n]); err == nil {
				t.Fatalf("a reservation cut to %d of %d bytes decoded", n, len(b))
			}
		}
		if err := back.Decode(append(b, 0)); err == nil {
			t.Fatal("a reservation with a trailing byte decoded")
		}
	}
	for _, m := range []ReservationMsg{
		{Node: "n", Addr: "a"},
		{Node: strings.Repeat("n", MaxNodeName+1), Reservation: "r"},
		{Addr: strings.Repeat("a", MaxNodeAddr+1), Reservation: "r"},
		{Reservation: strings.Repeat("r", MaxLeaseID+1)},
	} {
		b, err := m.Append(nil)
		if err != nil {
			continue
		}
		var back ReservationMsg
		if err := back.Decode(b); err == nil {
			t.Fatalf("%+v encoded and decoded", m)
		}
	}
}
