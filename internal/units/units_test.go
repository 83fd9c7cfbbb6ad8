package units

import "testing"

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		bad  bool
	}{
		{"4096", 4096, false}, {"16GiB", 16 << 30, false}, {"512 MB", 512e6, false},
		{"1.5G", 3 << 29, false}, {"2K", 2048, false}, {"17179869184TiB", 0, true},
		{"-1", 0, true}, {"lots", 0, true}, {"", 0, true},
	} {
		got, err := ParseBytes(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v", tc.in, got, err)
		}
	}
	if s := FormatBytes(3 << 29); s != "1.5 GiB" {
		t.Errorf("FormatBytes = %q", s)
	}
}
