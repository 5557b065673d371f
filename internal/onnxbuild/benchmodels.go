package onnxbuild

// WideMLP is the wide MLP the benchmarks share: "input" FP32 [-1, 256] →
// 1024 → 1024 → "output" FP32 [-1, 10] (softmax), 1.3 M weights. One row
// costs about 140 µs on one core here, most of it reading the weights, so
// a batch costs far less per row than a row alone.
func WideMLP() ([]byte, error) {
	return RandomMLP("wide", []int{256, 1024, 1024, 10}, "softmax", 7)
}

// SmallConvNet is the conv net the benchmarks share: "image" FP32
// [-1, 3, 32, 32] → 8, 16 and 32 channels → "logits" FP32 [-1, 10], about
// 1.6 MFLOP an image. Its cost grows with the images, so batching saves
// little per row: the model a batcher must not slow down.
func SmallConvNet() ([]byte, error) {
	spec, err := RandomConvNetSpec("conv", 3, 32, 32, []int{8, 16, 32}, 10, 22)
	if err != nil {
		return nil, err
	}
	return ConvNet(spec)
}
