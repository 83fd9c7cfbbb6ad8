package testkit

import "testing"

func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 3000 {
		a, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
}
