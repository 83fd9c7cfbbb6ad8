package main

import (
	"encoding/hex"
	"testing"
)

// RFC 1319's test suite.
func TestMD2(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "8350e5a3e24c153df2275c9f80692773"},
		{"a", "32ec01ec4a6dac72c0ab96fb34c0b5d1"},
		{"abc", "da853b0d3f88d99b30283a69e6ded6bb"},
		{"message digest", "ab4f496bfb2a530b219ff33031fe06b0"},
		{"abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "da33def2a42df13975352846c30338cd"},
		{"12345678901234567890123456789012345678901234567890123456789012345678901234567890", "d5976f79d83d3a0dc9806c3c66f3efd8"},
	}
	for _, c := range cases {
		got := md2Sum([]byte(c.in))
		if hex.EncodeToString(got[:]) != c.want {
			t.Errorf("MD2(%q) = %x, want %s", c.in, got, c.want)
		}
	}
}

func TestIntegrityMessageLayout(t *testing.T) {
	in := integrityInput{driverVersion: 12040, version: 12082, process: 7, thread: 9,
		addrs:       integrityAddrs{cudartTable: 0x1000, integrityTable: 0x2000, integrityFn: 0x3000},
		unixSeconds: 0x682b9cee,
		devices:     []integrityDevice{{uuid: [16]byte{1, 2, 3}, pci: [3]int32{0, 2, 0}}, {pci: [3]int32{0, 3, 0}}}}
	m := in.message()
	if len(m) != 48+2*28 {
		t.Fatalf("message is %d bytes, want %d", len(m), 48+2*28)
	}
	if m[0] != 0x08 || m[1] != 0x2f || m[16] != 0x00 || m[17] != 0x10 || m[40] != 0xee || m[48] != 1 || m[68] != 2 || m[76+20] != 3 {
		t.Fatalf("fields out of place: % x", m)
	}
}

func TestIntegritySum(t *testing.T) {
	in := integrityInput{driverVersion: 12040, version: 12082, process: 7, thread: 9, unixSeconds: 1}
	a := in.sum()
	in.unixSeconds++
	if b := in.sum(); a == b {
		t.Fatalf("the answer does not depend on the time: %x", a)
	}
	in.devices = append(in.devices, integrityDevice{pci: [3]int32{0, 1, 0}})
	if c := in.sum(); c == a {
		t.Fatalf("the answer does not depend on the devices: %x", c)
	}
	in.version = 12080
	if got := in.sum(); got != integrityFixed[0] {
		t.Fatalf("check version 12080: %x, want the fixed answer", got)
	}
}

func TestHMACMD2KeyPadding(t *testing.T) {
	// A key of one block is used as is; a shorter key is zero-padded.
	short := hmacMD2([]byte("key"), []byte("msg"))
	padded := hmacMD2(append([]byte("key"), make([]byte, 13)...), []byte("msg"))
	if short != padded {
		t.Fatalf("short key %x, zero-padded %x", short, padded)
	}
}

func TestExportTableUUIDs(t *testing.T) {
	seen := map[int]bool{}
	for id, tb := range exportTables {
		if seen[tb.which] {
			t.Errorf("table %d listed twice", tb.which)
		}
		seen[tb.which] = true
		if got := uuid(formatUUID(id)); got != id {
			t.Errorf("%s does not round-trip", formatUUID(id))
		}
	}
	if len(seen) != etIntegrity {
		t.Errorf("%d tables, want %d", len(seen), etIntegrity)
	}
	if formatUUID(uuid("6bd5fb6c-5bf4-e74a-8987-d93912fd9df9")) != "6bd5fb6c-5bf4-e74a-8987-d93912fd9df9" {
		t.Error("formatUUID")
	}
}
