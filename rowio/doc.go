// Package rowio moves rows between files and model requests: streaming
// readers and writers for JSONL, CSV and Parquet over one columnar block,
// the Frame, and a Schema that maps columns to a model's inputs. batch/job
// scores files with it and predlog writes logged traffic with it. (The
// Beam transform in the nested beam module has its own element types,
// scoring.Row and scoring.Result: a Beam pipeline reads with Beam's IO.)
//
// Reach for Schema.Bind first: it checks a schema against a model's
// metadata and returns a Mapping whose Fields are the columns to read and
// whose Request builds a serving.Request from a frame of them:
//
//	m, err := rowio.Schema{
//		Inputs: []rowio.Input{{Name: "features", Columns: []string{"f0", "f1", "f2"}}}, // FP32 [rows, 3]
//		Keys:   []rowio.Field{{Name: "id", Type: serving.Int64}},
//	}.Bind(md)
//	r, err := rowio.Open("rows.parquet", 0, m.Fields())
//	for {
//		var f rowio.Frame
//		if err := r.Read(&f, 1024); err == io.EOF { break }
//		req, err := m.Request(&f) // f.Bad holds the rows that did not decode
//		...
//	}
//
// # Columns and vectors
//
// A Field is a scalar column or a fixed-width vector. A vector is a JSON
// array in JSONL, a repeated column in Parquet (pandas, Spark, DuckDB read
// it as a list; a standard 3-level LIST of a primitive reads too), and the
// columns name_0 … name_{k-1} in CSV, which has no lists. An input comes
// from several scalar columns (8 columns → FP32 [rows, 8]) or from one
// vector column; its datatype and per-row shape come from the model's
// metadata when the schema leaves them out. DefaultSchema (a zero Schema
// when bound) reads each input from a vector column of its own name: the
// layout predlog writes, so logged traffic replays unchanged.
//
// # Bad input
//
// A row that does not decode (a missing field, a value that is not a
// number, out of an integer type's range, a list of the wrong length, a
// malformed line) is not an error of the read: it goes to Frame.Bad with
// its row number, line and raw text, and the good rows around it are
// kept, so a job can dead-letter it and go on. What makes the whole
// input unusable (a CSV or Parquet column missing, a corrupt Parquet
// footer) is an error of Open or Read. Lines are bounded by MaxLineBytes.
// parquet-go panics on some corrupt files; the reader recovers them into
// InvalidArgument errors.
//
// # Memory
//
// Readers stream: JSONL and CSV through a 64 KiB buffer, Parquet a page
// per column at a time from an io.ReaderAt. A Parquet writer holds at most
// MaxRowGroupRows rows before it writes a row group. Readers, Writers and
// Frames are not safe for concurrent use; a Mapping is.
package rowio
