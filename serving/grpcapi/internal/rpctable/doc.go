// Package rpctable hands grpcapi's RPCs to grpcserver, grpc-go's server of
// the same service, without widening grpcapi's API and without grpcapi
// importing grpc-go: grpcapi fills New and Option when it is initialised
// (grpcserver imports it, so it always is first), and grpcserver calls
// them. Nothing here names a grpc-go type; a program that imports grpcapi
// alone links none of grpc-go.
//
// A table of functions rather than exported methods on grpcapi's Handler:
// grpcapi's API stays what a user calls, and the type-erased hooks (New's
// any arguments) live where only this module's packages can reach them.
package rpctable
