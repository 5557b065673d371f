package job

import "os"

// writebackBytes is how far a part's file grows between two requests to
// the kernel to start writing it to disk.
const writebackBytes = 512 << 10

// writeback writes a part's file and, every writebackBytes, asks the
// kernel to start writing what it holds to disk, without waiting. The
// kernel otherwise keeps a fresh file's pages in memory for up to 30
// seconds, so the fsync that commits a part wrote all of it at once:
// for a part of a few MB, 10-90 ms on a cloud disk, with both cores
// idle when it is the job's last. Started early, that writing overlaps
// with scoring and the commit's fsync waits for the tail only. It is a
// hint: the commit's fsync still decides what is durable, and reports
// any error.
type writeback struct {
	f             *os.File
	written, sent int64 // bytes written; bytes handed to the kernel
	start         func(f *os.File, off, n int64)
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.start != nil && w.written-w.sent >= writebackBytes {
		w.start(w.f, w.sent, w.written-w.sent)
		w.sent = w.written
	}
	return n, err
}
