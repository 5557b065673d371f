package serving

// DecodeBudget is the most that decoding a request of n bytes may allocate
// in servekit's transports with their default limits: 16 × n + 1 MiB. The
// package doc ("Cost") says what n is and how the transports keep it; their
// tests and fuzz targets hold every decoder to it. A capacity plan can use
// it too: a replica answering c requests of at most n bytes at once needs
// c × DecodeBudget(n) for decoding.
func DecodeBudget(n int64) int64 { return budgetPerByte*n + budgetBase }

// The budget's terms: per byte of the request as received (for a compressed
// gRPC message, as inflated), and a constant for the capped counts (inputs,
// outputs, parameters) whose state costs more than the few bytes each takes.
const (
	budgetPerByte = 16
	budgetBase    = 1 << 20
)
