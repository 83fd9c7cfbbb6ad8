package wire

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sampleStatus() StatusMsg {
	return StatusMsg{Lease: "l-7", DriverVersion: 12040,
		Slices: []SliceStatus{
			{Device: 1, Memory: 1 << 30, Used: 5 << 20, Share: 0.25, Utilization: 0.5, UUID: [16]byte{1, 2, 3}, PCIBus: 2, CCMajor: 8, Name: "Kerf Emulated GPU #1"},
			{Device: 3, Memory: 2 << 30, PCIDomain: 1, PCIBus: 0x3b, PCIDevice: 4, CCMajor: 9, Name: ""},
		},
		Processes: []ProcessStatus{{Device: 1, PID: 4242, MemUsed: 5 << 20}, {Device: 3, PID: 7}},
	}
}

func TestStatusRoundTrips(t *testing.T) {
	m := sampleStatus()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got StatusMsg
	if err := got.Decode(b); err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v, %v", got, err)
	}
	for n := range len(b) {
		if err := new(StatusMsg).Decode(b[:n]); err == nil {
			t.Fatalf("a status cut to %d of %d bytes was accepted", n, len(b))
		}
	}
	if err := new(StatusMsg).Decode(append(b, 0)); err == nil {
		t.Fatal("a trailing byte was accepted")
	}
}

func TestStatusRejects(t *testing.T) {
	for name, edit := range map[string]func(*StatusMsg){
		"share above one":         func(m *StatusMsg) { m.Slices[0].Share = 1.5 },
		"negative utilization":    func(m *StatusMsg) { m.Slices[0].Utilization = -0.1 },
		"NaN utilization":         func(m *StatusMsg) { m.Slices[0].Utilization = math.NaN() },
		"name with NUL":           func(m *StatusMsg) { m.Slices[0].Name = "a\x00b" },
		"name too long":           func(m *StatusMsg) { m.Slices[0].Name = strings.Repeat("n", MaxDeviceName+1) },
		"too many slices":         func(m *StatusMsg) { m.Slices = make([]SliceStatus, MaxLeaseSlices+1) },
		"too many processes":      func(m *StatusMsg) { m.Processes = make([]ProcessStatus, MaxLeaseProcesses+1) },
		"lease ID with NUL":       func(m *StatusMsg) { m.Lease = "l\x00" },
		"lease ID over the limit": func(m *StatusMsg) { m.Lease = strings.Repeat("l", MaxLeaseID+1) },
	} {
		t.Run(name, func(t *testing.T) {
			m := sampleStatus()
			edit(&m)
			if _, err := m.Append(nil); err == nil {
				t.Fatal("encoded")
			}
		})
	}
	// The decoder checks the same, on bytes a peer wrote.
	m := sampleStatus()
	b, _ := m.Append(nil)
	share := bytes.Index(b, []byte{0, 0, 0, 0, 0, 0, 0xd0, 0x3f}) // 0.25
	if share < 0 {
		t.Fatal("share not found in the encoding")
	}
	bad := bytes.Clone(b)
	copy(bad[share:], []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x3f}) // 1.5
	if err := new(StatusMsg).Decode(bad); err == nil {
		t.Fatal("a share of 1.5 was accepted")
	}
}

func FuzzStatus(f *testing.F) {
	m := sampleStatus()
	b, _ := m.Append(nil)
	f.Add(b)
	b, _ = (&StatusMsg{Lease: "x"}).Append(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		var m StatusMsg
		if m.Decode(p) != nil {
			return
		}
		out, err := m.Append(nil)
		if err != nil || !bytes.Equal(out, p) {
			t.Fatalf("status does not round-trip: %v", err)
		}
	})
}
