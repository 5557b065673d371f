package grpcapi

import (
	"compress/gzip"
	"errors"
	"io"

	"connectrpc.com/connect"
)

const compressionGzip = "gzip"

// errInflated is what a bounded decompressor says past its limit.
var errInflated = errors.New("grpcapi: message inflates past the limit")

// boundedGzip is Connect's gzip decompressor with a ceiling: it gives at most
// limit+1 bytes, then fails. Connect reads limit+1 bytes of a message to
// learn that it is too large, then drains the rest to report its size; at
// gzip's ratio of about 1000:1 that drain would inflate a gigabyte from a
// megabyte, CPU spent on a message already refused. With the ceiling the
// refusal costs the limit, and Connect reports the message as larger than
// the limit without a size.
type boundedGzip struct {
	gzip.Reader
	limit, left int64
}

func newBoundedGzip(limit int64) func() connect.Decompressor {
	return func() connect.Decompressor { return &boundedGzip{limit: limit} }
}

// Reset starts a message: Connect resets a pooled decompressor before each.
func (g *boundedGzip) Reset(r io.Reader) error {
	g.left = g.limit + 1
	return g.Reader.Reset(r)
}

func (g *boundedGzip) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, errInflated
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.Reader.Read(p)
	g.left -= int64(n)
	return n, err
}

func newGzipWriter() connect.Compressor { return gzip.NewWriter(io.Discard) }
