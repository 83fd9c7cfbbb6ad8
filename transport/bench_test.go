package transport

import (
	"testing"
)

// benchEachPath runs bench over every transport, with a fresh server and a
// client dialled on that path.
func benchEachPath(b *testing.B, bench func(b *testing.B, c *Client)) {
	for _, via := range transports {
		b.Run(via, func(b *testing.B) {
			ts := startServerB(b)
			c, err := ts.tryDial(via, ts.tokenB(b))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			bench(b, c)
		})
	}
}

// BenchmarkAsyncMemset measures pipelined async calls over each path.
func BenchmarkAsyncMemset(b *testing.B) {
	benchEachPath(b, func(b *testing.B, c *Client) {
		p, _ := c.MemAlloc(4096)
		b.ResetTimer()
		for i := range b.N {
			if err := c.Memset(p+uint64(i%1024)*4, uint32(i), 4, 1, true, 0); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Synchronize(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSyncCall measures a sync round trip over each path.
func BenchmarkSyncCall(b *testing.B) {
	benchEachPath(b, func(b *testing.B, c *Client) {
		for b.Loop() {
			if _, _, err := c.MemGetInfo(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBulkHtoD measures a 64 MiB host-to-device copy over each path.
func BenchmarkBulkHtoD(b *testing.B) {
	const size = 64 << 20
	benchEachPath(b, func(b *testing.B, c *Client) {
		p, err := c.MemAlloc(size)
		if err != nil {
			b.Fatal(err)
		}
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i)
		}
		if err := c.Memset(p, 0, 1, size, false, 0); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			if err := c.MemcpyHtoD(p, src); err != nil {
				b.Fatal(err)
			}
		}
	})
}
