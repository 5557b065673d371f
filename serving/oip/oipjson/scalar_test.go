package oipjson

import (
	"runtime"
	"testing"

	"github.com/servekit/servekit/serving/oip"
)

// A scalar input ("shape": []) decoded by a fresh decoder, with no shapes
// scratch space yet, must stay a scalar: slicing a nil scratch gave nil,
// which reads as "no shape". The pool is emptied so the decoder is fresh
// whatever ran before (under -race, sync.Pool drops items at random, which
// is how CI found it).
func TestScalarShapeWithFreshDecoder(t *testing.T) {
	runtime.GC()
	runtime.GC() // a pool item survives one GC in the victim cache
	body := []byte(`{"inputs":[{"name":"x","shape":[],"datatype":"BOOL","data":true}]}`)
	req, err := DecodeRequest(body, len(body), oip.Limits{Elements: 1 << 20})
	if err != nil {
		t.Fatalf("scalar input rejected: %v", err)
	}
	if x := req.Inputs[0]; x.Shape == nil || len(x.Shape) != 0 || x.Len() != 1 {
		t.Errorf("scalar decoded as shape %v with %d elements", x.Shape, x.Len())
	}
}
