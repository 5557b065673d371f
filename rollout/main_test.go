package rollout_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every mirror is a goroutine the Shadow owns: none may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
