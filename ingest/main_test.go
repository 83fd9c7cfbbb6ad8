package ingest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a subscriber, pipeline or broker client
// leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
