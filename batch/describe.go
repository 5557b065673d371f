package batch

import "github.com/servekit/servekit/serving"

// Metadata describes the model as batched: its metadata, with the most
// rows a batch takes (serving.Metadata.MaxBatchRows) and the longest a
// request waits for company (BatchDelay), which a transport reports as
// Triton's max_batch_size and dynamic_batching.
func (b *Batcher) Metadata() serving.Metadata {
	md := b.md
	md.MaxBatchRows, md.BatchDelay = int(b.cfg.maxRows), b.cfg.maxDelay
	return md
}

var _ serving.Describer = (*Batcher)(nil)
