package grpcapi

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// The answers a client reads are decoded by hand too, as requests are
// (wire.go): a server the client need not trust must not make it allocate
// 40 to 80 bytes per byte of an answer of empty outputs or elements, which
// proto.Unmarshal would. Every repeated field is counted on the wire before
// its slice is made, and the counts are capped by the client's limits.

// Unmarshal decodes the message m of the inference service from b within
// lim (a zero field is its default), as the handler decodes requests:
// ModelInferRequest, ModelInferResponse, ModelMetadataResponse and
// ServerMetadataResponse by hand, counting every repeated field before its
// slice is made, so a message costs what its bytes do
// (serving.DecodeBudget); any other message, none of which has a repeated
// field of variable-size elements, by proto.Unmarshal. It makes the
// message proto.Unmarshal makes, unknown fields dropped. Counts over lim
// are InvalidArgument errors. What a Go client of the service decodes an
// untrusted server's answers with (serving/remote), and what the handler's
// codec decodes requests with.
func Unmarshal(b []byte, m proto.Message, lim oip.Limits) error {
	lim = withDefaults(lim)
	switch msg := m.(type) {
	case *pb.ModelInferRequest:
		return decodeInferRequest(b, msg, lim)
	case *pb.ModelInferResponse:
		return decodeInferResponse(b, msg, lim)
	case *pb.ModelMetadataResponse:
		return decodeModelMetadata(b, msg, lim)
	case *pb.ServerMetadataResponse:
		return decodeServerMetadata(b, msg)
	}
	return proto.Unmarshal(b, m)
}

func withDefaults(l oip.Limits) oip.Limits {
	d := oip.DefaultLimits
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	if l.Elements <= 0 {
		l.Elements = d.Elements
	}
	pick(&l.Inputs, d.Inputs)
	pick(&l.Outputs, d.Outputs)
	pick(&l.Parameters, d.Parameters)
	pick(&l.Instances, d.Instances)
	return l
}

// decodeInferResponse replaces m with the answer encoded in b. Its outputs
// are capped by lim.Outputs, as are its raw contents.
func decodeInferResponse(b []byte, m *pb.ModelInferResponse, lim oip.Limits) error {
	proto.Reset(m)
	d := wireDecoder{lim: lim}
	var c [2]repeated // fields 5 and 6
	c[0] = repeated{typ: protowire.BytesType, max: lim.Outputs, name: "outputs"}
	c[1] = repeated{typ: protowire.BytesType, max: lim.Outputs, name: "raw output contents"}
	if err := countRepeated(b, 5, c[:]); err != nil {
		return err
	}
	nOut, nRaw, rawBytes := c[0].n, c[1].n, c[1].bytes
	outs := make([]pb.ModelInferResponse_InferOutputTensor, nOut)
	if nOut > 0 {
		m.Outputs = make([]*pb.ModelInferResponse_InferOutputTensor, 0, nOut)
	}
	var raw []byte
	if nRaw > 0 {
		m.RawOutputContents = make([][]byte, 0, nRaw)
		raw = make([]byte, 0, rawBytes)
	}
	return eachField(b, func(f wireField) error {
		if f.typ != protowire.BytesType {
			return nil // every field of the message is length-delimited
		}
		var err error
		switch f.num {
		case 1:
			m.ModelName, err = wireString(f.b)
		case 2:
			m.ModelVersion, err = wireString(f.b)
		case 3:
			m.Id, err = wireString(f.b)
		case 4:
			err = d.param(f.b, &m.Parameters)
		case 5:
			o := &outs[len(m.Outputs)]
			m.Outputs = append(m.Outputs, o)
			err = d.tensor(f.b, tensorFields{&o.Name, &o.Datatype, &o.Shape, &o.Parameters, &o.Contents})
		case 6:
			start := len(raw)
			raw = append(raw, f.b...)
			m.RawOutputContents = append(m.RawOutputContents, raw[start:len(raw):len(raw)])
		}
		return err
	})
}

// decodeModelMetadata replaces m with the model metadata encoded in b; its
// inputs and outputs are capped by lim.Inputs and lim.Outputs, the dims of
// each by serving.MaxRank.
func decodeModelMetadata(b []byte, m *pb.ModelMetadataResponse, lim oip.Limits) error {
	proto.Reset(m)
	c := [...]repeated{ // fields 2 to 5
		{typ: protowire.BytesType, max: uncapped, name: "versions"},
		{}, // platform
		{typ: protowire.BytesType, max: lim.Inputs, name: "inputs in model metadata"},
		{typ: protowire.BytesType, max: lim.Outputs, name: "outputs in model metadata"},
	}
	if err := countRepeated(b, 2, c[:]); err != nil {
		return err
	}
	nVer, nIn, nOut := c[0].n, c[2].n, c[3].n
	specs := make([]pb.ModelMetadataResponse_TensorMetadata, nIn+nOut)
	if nVer > 0 {
		m.Versions = make([]string, 0, nVer)
	}
	if nIn > 0 {
		m.Inputs = make([]*pb.ModelMetadataResponse_TensorMetadata, 0, nIn)
	}
	if nOut > 0 {
		m.Outputs = make([]*pb.ModelMetadataResponse_TensorMetadata, 0, nOut)
	}
	return eachField(b, func(f wireField) error {
		if f.typ != protowire.BytesType {
			return nil // every field of the message is length-delimited
		}
		var err error
		switch f.num {
		case 1:
			m.Name, err = wireString(f.b)
		case 2:
			var v string
			v, err = wireString(f.b)
			m.Versions = append(m.Versions, v)
		case 3:
			m.Platform, err = wireString(f.b)
		case 4, 5:
			s := &specs[len(m.Inputs)+len(m.Outputs)]
			if f.num == 4 {
				m.Inputs = append(m.Inputs, s)
			} else {
				m.Outputs = append(m.Outputs, s)
			}
			err = tensorMetadata(f.b, s)
		}
		return err
	})
}

// tensorMetadata decodes one TensorMetadata: name 1, datatype 2, shape 3.
func tensorMetadata(b []byte, s *pb.ModelMetadataResponse_TensorMetadata) error {
	dims := []repeated{{typ: protowire.VarintType, max: serving.MaxRank, name: "dims in a tensor's shape"}}
	if err := countRepeated(b, 3, dims); err != nil {
		return err
	}
	if n := dims[0].n; n > 0 {
		s.Shape = make([]int64, 0, n)
	}
	return eachField(b, func(f wireField) error {
		var err error
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			s.Name, err = wireString(f.b)
		case f.num == 2 && f.typ == protowire.BytesType:
			s.Datatype, err = wireString(f.b)
		case f.num == 3:
			s.Shape, err = appendVarints(s.Shape, f, func(v uint64) int64 { return int64(v) })
		}
		return err
	})
}

// decodeServerMetadata replaces m with the server metadata encoded in b.
// Its extensions are counted before they are kept, so each costs its
// string header and its bytes: no cap is needed.
func decodeServerMetadata(b []byte, m *pb.ServerMetadataResponse) error {
	proto.Reset(m)
	c := []repeated{{typ: protowire.BytesType, max: uncapped, name: "extensions"}}
	if err := countRepeated(b, 3, c); err != nil {
		return err
	}
	n := c[0].n
	if n > 0 {
		m.Extensions = make([]string, 0, n)
	}
	return eachField(b, func(f wireField) error {
		if f.typ != protowire.BytesType {
			return nil
		}
		var err error
		switch f.num {
		case 1:
			m.Name, err = wireString(f.b)
		case 2:
			m.Version, err = wireString(f.b)
		case 3:
			var e string
			e, err = wireString(f.b)
			m.Extensions = append(m.Extensions, e)
		}
		return err
	})
}
