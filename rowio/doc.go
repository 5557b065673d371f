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
// It is also the layout of a model exported from a DataFrame by skl2onnx
// (a ColumnTransformer pipeline), whose inputs are the DataFrame's columns,
// one [N, 1] input each, FP32, INT64 and STRING mixed: the default schema
// reads each from the scalar column of its name, so the training file's
// layout scores as it is, and a Schema renames the columns that differ.
// A text cell is a STRING element as written, even one that looks like a
// number ("01234" stays "01234").
//
// # Bad input
//
// A row that does not decode (a missing field, a value that is not a
// number, out of an integer type's range, a list of the wrong length, a
// malformed line) is not an error of the read: it goes to Frame.Bad with
// its row number, line and raw text, and the good rows around it are
// kept, so a job can dead-letter it and go on. What makes the whole
// input unusable (a CSV or Parquet column missing or of a type rowio does
// not read, such as INT96, a corrupt Parquet footer or page) is an error
// of Open or Read. Lines are bounded by MaxLineBytes. parquet-go panics
// on some corrupt files; the reader recovers them into InvalidArgument
// errors.
//
// # Parquet, column by column
//
// The Parquet reader never handles a value on its own. For each field it
// takes a column chunk's pages as parquet-go decodes them (decompressed,
// dictionary and levels decoded: Page.Data is a typed slice of the
// page's values) and copies as many rows as the page and the frame allow
// into the field's typed slice in one append; the levels are only looked
// at to find nulls and list boundaries, with bytes.Count over a run of
// rows, row by row only where a run holds a bad row. Each column decodes
// on its own: a row one column cannot take (a null, a list of the wrong
// length, a value out of range) gets a placeholder there and is dropped
// from every column once all have read, so bad rows cost nothing when
// there are none. A field of the page's own type (FP32 from FLOAT, INT64
// from INT64, text from BYTE_ARRAY, …) is a block copy; common
// conversions (DOUBLE to FP32, as pandas writes floats; INT32 to INT64;
// integers to floats) are typed loops; the rest go value by value
// through the checked conversions the text formats use. Text fields
// share one block per run of rows rather than an allocation per value.
// Logical types are honoured: unsigned integers read as unsigned and
// TIMESTAMP(MILLIS or NANOS) as microseconds for a Timestamp field.
//
// So each field ends up in a slice of the Go type serving.Tensor holds,
// and an input read from one column becomes its tensor without a copy
// (Mapping.Request shares it): an FP32 vector column, or, as per-column
// inputs are, a STRING, INT64 or FP32 column fed as an [N, 1] input. An
// input made of several scalar columns is interleaved into a new tensor,
// one copy. On the batch job's fraud input (an INT64 id and 8 FLOAT
// columns) the reader runs at parquet-go's own typed page reads into
// preallocated slices when it reads into a reused frame
// (BenchmarkParquetRead), ten times the boxed value reads it replaced.
//
// The Parquet writer hands each column of a frame to parquet-go's
// ColumnWriter for it, in runs of values built by typed loops; pages are
// encoded as they fill and a row group is flushed every MaxRowGroupRows
// rows. Integers are DELTA_BINARY_PACKED (as Parquet 2 writers write
// them: row numbers, timestamps and ids climb, and pack to a few bits),
// and Snappy is written in its fast mode: the same format, half the CPU
// of parquet-go's codec. BenchmarkParquetWrite compares it with
// parquet-go's GenericWriter from pre-formed structs.
//
// # Memory
//
// Readers stream: JSONL and CSV through a 64 KiB buffer, Parquet a page
// per column at a time from an io.ReaderAt. A reader makes room for the
// rows asked (up to 16k) once, and a frame read into again keeps its
// slices. A Parquet writer holds at most MaxRowGroupRows rows of encoded
// pages before it writes a row group. Readers, Writers and Frames are not
// safe for concurrent use; a Mapping is.
package rowio
