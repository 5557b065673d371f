// Package deploy holds the deployment manifests for many replicas of
// servekit serve (cmd/servekit; k8s/) and the offline checks that run on them in CI:
// every Kubernetes document decodes strictly (unknown fields rejected) into
// the k8s.io/api type of its apiVersion and kind, the objects agree with
// each other (selectors, names, ports, the ConfigMap), the server's
// arguments and ConfigMap variables are flags the binary has, and the
// Dockerfile of cmd/servekit parses and keeps its promises (multi-stage, ONNX
// Runtime from the project's script, non-root user, HEALTHCHECK).
//
// It is a module of its own because k8s.io/api and buildkit's Dockerfile
// parser bring about forty modules that no user of servekit needs; the
// root Makefile's test target runs it.
//
// Apply with kubectl apply -f deploy/k8s/ after building and pushing the
// image (see cmd/servekit/Dockerfile) and creating the Secret of the
// shared cache, which is not shipped (a committed secret is a known one):
//
//	kubectl create secret generic servekit-cache \
//	  --from-literal=redis-password="$(openssl rand -hex 32)" \
//	  --from-literal=hmac-key="$(openssl rand -hex 32)"
//
// Redis runs with that password (requirepass), behind a NetworkPolicy that
// admits only the servers' pods; the servers read the password and the HMAC
// key that signs and verifies every cache entry from the same Secret
// ($SERVEKIT_CACHE_REDIS_PASSWORD, $SERVEKIT_CACHE_REDIS_HMAC_KEY). Without the Secret
// the pods do not start. To rotate the HMAC key without a wave of misses,
// add the old one as hmac-key-previous, mapped to
// $SERVEKIT_CACHE_REDIS_HMAC_KEY_PREVIOUS, roll out, then remove it. The offline
// checks hold the manifests to all of this (cache_test.go).
package deploy
