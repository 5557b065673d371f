package modelconfigpb_test

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/servekit/servekit/serving/modelconfigpb"
)

// A config.pbtxt as Triton's documentation writes it, and the same fields
// in the JSON form, read into one message type.
func Example() {
	var cfg modelconfigpb.ModelConfig
	err := prototext.Unmarshal([]byte(`
name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] } ]
dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
`), &cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.GetName(), cfg.GetMaxBatchSize(), cfg.GetInput()[0].GetDataType(), cfg.GetDynamicBatching().GetPreferredBatchSize())

	var fromJSON modelconfigpb.ModelConfig
	err = protojson.Unmarshal([]byte(`{"name": "simple", "max_batch_size": 8, "instance_group": [{"kind": "KIND_CPU", "count": 2}]}`), &fromJSON)
	fmt.Println(fromJSON.GetInstanceGroup()[0].GetKind(), fromJSON.GetInstanceGroup()[0].GetCount(), err)
	// Output:
	// simple 8 TYPE_INT32 [4 8]
	// KIND_CPU 2 <nil>
}
