// Command models writes the models that bench/http-batch.sh serves, with a
// one-row V2 JSON request body for each:
//
//	go run ./bench/models -dir bench/out/models
//
// fraud (the demo model, testdata/models/fraud.onnx), wide (onnxbuild.WideMLP)
// and conv (onnxbuild.SmallConvNet): NAME.onnx and NAME.json. The bodies
// hold seeded values in [0, 1), so every run sends the same bytes.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/servekit/servekit/internal/onnxbuild"
)

type model struct {
	name, input string
	row         []int64
	build       func() ([]byte, error)
}

var models = []model{
	{"fraud", "features", []int64{8}, onnxbuild.FraudMLP},
	{"wide", "input", []int64{256}, onnxbuild.WideMLP},
	{"conv", "image", []int64{3, 32, 32}, onnxbuild.SmallConvNet},
}

func main() {
	dir := flag.String("dir", "bench/out/models", "output folder")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("models: ")
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	for _, m := range models {
		b, err := m.build()
		if err != nil {
			log.Fatalf("%s: %v", m.name, err)
		}
		if err := os.WriteFile(filepath.Join(*dir, m.name+".onnx"), b, 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*dir, m.name+".json"), body(m), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("wrote %d models to %s\n", len(models), *dir)
}

// body is a V2 request of one row for m.
func body(m model) []byte {
	n := 1
	shape := []string{"1"}
	for _, d := range m.row {
		n *= int(d)
		shape = append(shape, strconv.FormatInt(d, 10))
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	vals := make([]string, n)
	for i := range vals {
		vals[i] = strconv.FormatFloat(float64(rng.Float32()), 'g', 4, 32)
	}
	return fmt.Appendf(nil, `{"inputs":[{"name":%q,"shape":[%s],"datatype":"FP32","data":[%s]}]}`,
		m.input, strings.Join(shape, ","), strings.Join(vals, ","))
}
