package onnx_test

import (
	"testing"

	"github.com/servekit/servekit/backend/onnx"
)

// LiveSessions counts a session from its load to its Close, once, including
// a load whose warm-up fails (the Model closes itself).
func TestLiveSessions(t *testing.T) {
	requireORT(t)
	before := onnx.LiveSessions()
	m, err := onnx.Load(fraudPath())
	if err != nil {
		t.Fatal(err)
	}
	if got := onnx.LiveSessions(); got != before+1 {
		t.Fatalf("LiveSessions after Load = %d, want %d", got, before+1)
	}
	m.Close()
	m.Close()
	if got := onnx.LiveSessions(); got != before {
		t.Fatalf("LiveSessions after Close (twice) = %d, want %d", got, before)
	}
}
