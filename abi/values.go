package abi

// Values holds one call's decoded arguments or results, in catalogue
// order: fixed-size kinds in Words, Bytes and String kinds in Blobs. It is
// a plain value so that the hot path does not allocate.
type Values struct {
	Words [MaxWords]uint64
	Blobs [MaxBlobs][]byte
	NW    uint8
	NB    uint8
}

// Reset empties v for reuse.
func (v *Values) Reset() { v.NW, v.NB = 0, 0 }

// Word appends a scalar.
func (v *Values) Word(x uint64) *Values { v.Words[v.NW] = x; v.NW++; return v }

// Blob appends a byte string. The slice is not copied.
func (v *Values) Blob(p []byte) *Values { v.Blobs[v.NB] = p; v.NB++; return v }
