package drift

// binner finds a value's fine bin in a few steps instead of a binary search
// over ~100 edges (whose unpredictable branches cost about 40 ns a value):
// the edges' range is cut into equal cells, and a table says which bins
// each cell spans, so a lookup is a multiply, a table read and a search of
// the one or two edges in the cell. The answer never depends on the table:
// the search ends by stepping to the exact bin, so the table (and rounding
// in the cell index) can only cost time, never correctness.
type binner struct {
	edges []float64
	lo    float64
	scale float64  // cells per unit of value
	first []uint16 // first[c]: the edges below cell c's lower end
}

const binCells = 256

func newBinner(edges []float64) *binner {
	b := &binner{edges: edges}
	n := len(edges)
	if n < 2 || n > 1<<16-1 {
		return b
	}
	lo, hi := edges[0], edges[n-1]
	b.lo, b.scale = lo, binCells/(hi-lo)
	if !(b.scale > 0) || b.scale > 1e300 {
		b.scale = 0
		return b
	}
	b.first = make([]uint16, binCells+1)
	j := 0
	for c := range b.first {
		cellLo := lo + float64(c)/b.scale
		for j < n && edges[j] < cellLo {
			j++
		}
		b.first[c] = uint16(j)
	}
	return b
}

// bin is the number of edges below v: v's fine bin. v must not be NaN.
func (b *binner) bin(v float64) int {
	e := b.edges
	if b.scale == 0 {
		return binOf(e, v)
	}
	if v <= b.lo {
		return 0
	}
	c := binCells - 1
	if f := (v - b.lo) * b.scale; f < binCells { // false for +Inf
		c = int(f)
	} else if v > e[len(e)-1] {
		return len(e)
	}
	i, j := int(b.first[c]), int(b.first[c+1])
	for i < j { // the bins the cell spans: usually none to two
		m := int(uint(i+j) >> 1)
		if e[m] < v {
			i = m + 1
		} else {
			j = m
		}
	}
	for i > 0 && e[i-1] >= v {
		i--
	}
	for i < len(e) && e[i] < v {
		i++
	}
	return i
}
