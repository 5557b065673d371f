package serving

// DecodeBudget is the most that decoding a request of n bytes may allocate
// in servekit's transports, with their default limits: see the package doc
// ("Cost"). Tests hold every decoder to it.
func DecodeBudget(n int64) int64 { return BudgetPerByte*n + BudgetBase }

// The decode budget's terms: per byte of the request as received (for a
// compressed gRPC message, as inflated), and a constant for the capped
// counts (inputs, outputs, parameters) whose state costs more than the few
// bytes each takes.
const (
	BudgetPerByte = 16
	BudgetBase    = 1 << 20
)
