package job

import (
	"testing"

	"github.com/servekit/servekit/rowio"
)

// TestLaneCount: a lane per worker up to maxLanes for Parquet, one for
// text, and never more lanes than the shard has parts, so that a job of
// one part keeps the whole window in its one lane.
func TestLaneCount(t *testing.T) {
	for _, c := range []struct {
		format                  rowio.Format
		workers                 int
		rows, partRows          int64
		shard, count, wantLanes int
	}{
		{rowio.Parquet, 2, 1 << 21, 1 << 16, 0, 1, 2},
		{rowio.Parquet, 16, 1 << 21, 1 << 16, 0, 1, maxLanes},
		{rowio.Parquet, 2, 1 << 16, 1 << 16, 0, 1, 1},   // one part
		{rowio.Parquet, 2, 1<<16 + 1, 1 << 16, 0, 1, 2}, // a second part of one row
		{rowio.Parquet, 4, 0, 1 << 16, 0, 1, 1},         // empty input
		{rowio.Parquet, 4, 3000, 1000, 1, 2, 1},         // parts 0-2: shard 1 has part 1
		{rowio.Parquet, 4, 3000, 1000, 0, 2, 2},         // shard 0 has parts 0 and 2
		{rowio.Parquet, 4, 3000, 1000, 3, 4, 1},         // shard 3 has none
		{rowio.JSONL, 4, 0, 1000, 0, 1, 1},
		{rowio.CSV, 4, 0, 1000, 0, 1, 1},
	} {
		cfg := config{inFormat: c.format, workers: c.workers, partRows: c.partRows, shard: c.shard, count: c.count}
		if got := laneCount(cfg, c.rows); got != c.wantLanes {
			t.Errorf("%v, %d workers, %d rows in parts of %d, shard %d of %d: %d lanes, want %d",
				c.format, c.workers, c.rows, c.partRows, c.shard, c.count, got, c.wantLanes)
		}
	}
}
