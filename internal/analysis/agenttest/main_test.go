package agenttest_test

import (
	"os"
	"testing"

	"flotilla.dev/flotilla/internal/testfleet"
)

// TestMain stops the local fleet that the Job provider's test starts.
func TestMain(m *testing.M) { os.Exit(testfleet.Main(m)) }
