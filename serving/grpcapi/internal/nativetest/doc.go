// Package nativetest starts grpc-go's server (grpcserver) for the tests
// of grpcapi and grpcserver, which both run the RPCs against it: one
// helper for both, in a package only this module's tests import, so
// that neither package's API grows for its tests.
package nativetest
