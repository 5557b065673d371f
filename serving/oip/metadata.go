package oip

// ServerMetadata is the protocol's server metadata, as GET /v2 and the
// ServerMetadata RPC answer it: what a client of a V2 server reads
// (serving/remote).
type ServerMetadata struct {
	Name    string
	Version string
	// Extensions lists the protocol extensions the server supports
	// ("binary_tensor_data", "classification", ...).
	Extensions []string
}
