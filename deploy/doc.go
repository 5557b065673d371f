// Package deploy holds the deployment manifests for many replicas of
// examples/realtime (k8s/) and the offline checks that run on them in CI:
// every Kubernetes document decodes strictly (unknown fields rejected) into
// the k8s.io/api type of its apiVersion and kind, the objects agree with
// each other (selectors, names, ports, the ConfigMap), the server's
// arguments are flags the binary has, and the Dockerfile of
// examples/realtime parses and keeps its promises (multi-stage, ONNX
// Runtime from the project's script, non-root user, HEALTHCHECK).
//
// It is a module of its own because k8s.io/api and buildkit's Dockerfile
// parser bring about forty modules that no user of servekit needs; the
// root Makefile's test target runs it.
//
// Apply with kubectl apply -f deploy/k8s/ after building and pushing the
// image (see examples/realtime/Dockerfile).
package deploy
