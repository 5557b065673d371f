package rollouttest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/servekit/servekit/rollout/rollouttest"
)

func TestClock(t *testing.T) {
	start := time.Unix(1000, 0)
	c := rollouttest.NewClock(start)
	var fired []string
	at := func(name string) func() {
		return func() { fired = append(fired, name+"@"+c.Now().Sub(start).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, func() {
		at("a")()
		c.AfterFunc(time.Second, at("nested")) // due at 2s: fires in this Advance
	})
	c.AfterFunc(time.Second, at("b")) // same time as a: after it
	stopped := c.AfterFunc(2*time.Second, at("stopped"))
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop: want true, then false")
	}
	c.Advance(2500 * time.Millisecond)
	if want := []string{"a@1s", "b@1s", "nested@2s"}; !slices.Equal(fired, want) {
		t.Errorf("fired %v, want %v", fired, want)
	}
	if got := c.Now().Sub(start); got != 2500*time.Millisecond || c.Pending() != 1 {
		t.Errorf("now +%v, pending %d", got, c.Pending())
	}
	c.AfterFunc(0, at("zero"))
	c.Advance(0)
	c.Advance(time.Second)
	if want := []string{"a@1s", "b@1s", "nested@2s", "zero@2.5s", "c@3s"}; !slices.Equal(fired, want) {
		t.Errorf("fired %v, want %v", fired, want)
	}
}
