package deploy_test

import (
	"bytes"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestCacheTierIsClosed holds the shared cache to what issue 18 (row 7)
// asked of it: Redis runs with a password from a Secret, the servers get
// that password and the HMAC key that signs their entries from the Secret
// too (never from the ConfigMap or a literal), no secret is committed, and
// a NetworkPolicy admits only the servers to Redis.
func TestCacheTierIsClosed(t *testing.T) {
	ms := load(t, "k8s/*.yaml")
	var cm *corev1.ConfigMap
	for _, c := range all[corev1.ConfigMap](ms) {
		if c.Name == "servekit" {
			cm = c
		}
	}
	if cm == nil || cm.Data["SERVEKIT_CACHE_REDIS"] == "" {
		t.Fatal("no ConfigMap servekit naming SERVEKIT_CACHE_REDIS: nothing to check")
	}
	for k := range cm.Data {
		if strings.Contains(k, "PASSWORD") || strings.Contains(k, "KEY") {
			t.Errorf("ConfigMap key %s: secrets belong in a Secret", k)
		}
	}
	for _, s := range all[corev1.Secret](ms) {
		if len(s.Data) > 0 || len(s.StringData) > 0 {
			t.Errorf("Secret %s is committed with data: a shipped secret is a known one", s.Name)
		}
	}

	host, _, _ := strings.Cut(cm.Data["SERVEKIT_CACHE_REDIS"], ":")
	var redisDep, server *appsv1.Deployment
	for _, d := range all[appsv1.Deployment](ms) {
		for _, s := range all[corev1.Service](ms) {
			if s.Name == host && subset(s.Spec.Selector, d.Spec.Template.Labels) {
				redisDep = d
			}
		}
		if d.Name == "servekit" {
			server = d
		}
	}
	if redisDep == nil || server == nil {
		t.Fatalf("no Deployment behind Service %s, or no servekit", host)
	}

	// Redis: --requirepass $(VAR), VAR from a Secret; the probe's redis-cli
	// authenticates from the same Secret.
	rc := redisDep.Spec.Template.Spec.Containers[0]
	i := slices.Index(rc.Args, "--requirepass")
	if i < 0 || i+1 >= len(rc.Args) {
		t.Fatalf("Redis runs without --requirepass: %q", rc.Args)
	}
	m := regexp.MustCompile(`^\$\(([A-Z_]+)\)$`).FindStringSubmatch(rc.Args[i+1])
	if m == nil {
		t.Fatalf("--requirepass %q: want $(VAR) from a Secret, not a literal", rc.Args[i+1])
	}
	password := secretOf(t, rc, m[1])
	if p := rc.ReadinessProbe; p != nil && p.Exec != nil && slices.Contains(p.Exec.Command, "redis-cli") {
		if got := secretOf(t, rc, "REDISCLI_AUTH"); got != password {
			t.Errorf("the readiness probe authenticates with %v, Redis's password is %v", got, password)
		}
	}

	// The server: the same password, and an HMAC key, each from a Secret,
	// under the names the binary reads.
	sc := server.Spec.Template.Spec.Containers[0]
	if got := secretOf(t, sc, "SERVEKIT_CACHE_REDIS_PASSWORD"); got != password {
		t.Errorf("the server reads the password from %v, Redis from %v", got, password)
	}
	if key := secretOf(t, sc, "SERVEKIT_CACHE_REDIS_HMAC_KEY"); key == password {
		t.Errorf("the HMAC key is Redis's password (%v): a second secret, please", key)
	}
	help := serveHelp(t)
	for _, v := range []string{"SERVEKIT_CACHE_REDIS_PASSWORD", "SERVEKIT_CACHE_REDIS_HMAC_KEY"} {
		if !strings.Contains(help, "$"+v) {
			t.Errorf("servekit serve does not read $%s", v)
		}
	}

	// The NetworkPolicy: it selects Redis's pods, isolates ingress, and
	// admits only pods of the server, on Redis's port.
	var policy *networkingv1.NetworkPolicy
	for _, p := range all[networkingv1.NetworkPolicy](ms) {
		if subset(p.Spec.PodSelector.MatchLabels, redisDep.Spec.Template.Labels) {
			policy = p
		}
	}
	if policy == nil {
		t.Fatal("no NetworkPolicy selects the Redis pods")
	}
	if !slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("NetworkPolicy %s does not isolate ingress", policy.Name)
	}
	if len(policy.Spec.Ingress) == 0 {
		t.Errorf("NetworkPolicy %s admits nobody: the servers cannot reach Redis", policy.Name)
	}
	for _, rule := range policy.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("NetworkPolicy %s: a rule without from admits every pod", policy.Name)
		}
		for _, peer := range rule.From {
			if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil ||
				len(peer.PodSelector.MatchLabels) == 0 || len(peer.PodSelector.MatchExpressions) != 0 {
				t.Errorf("NetworkPolicy %s admits %+v: only the servers' pods, by their labels", policy.Name, peer)
				continue
			}
			for _, d := range all[appsv1.Deployment](ms) {
				if subset(peer.PodSelector.MatchLabels, d.Spec.Template.Labels) && d != server {
					t.Errorf("NetworkPolicy %s admits the pods of %s, which do not serve", policy.Name, d.Name)
				}
			}
			if !subset(peer.PodSelector.MatchLabels, server.Spec.Template.Labels) {
				t.Errorf("NetworkPolicy %s does not admit the servers' pods", policy.Name)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy %s: a rule without ports opens every port", policy.Name)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || !hasPort(redisDep, p.Port.String()) {
				t.Errorf("NetworkPolicy %s opens port %v, not Redis's", policy.Name, p.Port)
			}
		}
	}
}

// secretOf returns the Secret key that env var name of c comes from, failing
// the test when it comes from anywhere else.
func secretOf(t *testing.T, c corev1.Container, name string) corev1.SecretKeySelector {
	t.Helper()
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Fatalf("container %s: %s is not read from a Secret", c.Name, name)
		}
		return *e.ValueFrom.SecretKeyRef
	}
	t.Fatalf("container %s has no %s", c.Name, name)
	return corev1.SecretKeySelector{}
}

// serveHelp is the --help text of servekit serve, built from this
// checkout once per test binary.
func serveHelp(t *testing.T) string {
	t.Helper()
	helpOnce.Do(func() {
		cmd := exec.Command("go", "run", "./cmd/servekit", "serve", "--help")
		cmd.Dir = ".."
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		_ = cmd.Run()
		help = out.String()
	})
	return help
}

var (
	helpOnce sync.Once
	help     string
)
