package e2e

import (
	"os"
	"testing"

	"flotilla.dev/flotilla/internal/testfleet"
)

func TestMain(m *testing.M) { os.Exit(testfleet.Main(m)) }
