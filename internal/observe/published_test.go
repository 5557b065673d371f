package observe

import (
	"slices"
	"testing"
)

func TestAppendBoundedKeepsNewest(t *testing.T) {
	var s []int
	for i := range 5 {
		s = AppendBounded(s, i, 3)
	}
	if want := []int{2, 3, 4}; !slices.Equal(s, want) {
		t.Fatalf("got %v, want %v", s, want)
	}
}

func TestSortedKeys(t *testing.T) {
	m := map[Key]int{{"b", "1"}: 0, {"a", "2"}: 0, {"a", "10"}: 0, {"a", "1"}: 0}
	got := SortedKeys(m)
	want := []Key{{"a", "1"}, {"a", "10"}, {"a", "2"}, {"b", "1"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
