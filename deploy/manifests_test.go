package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// kinds maps apiVersion/kind to the type a document must decode into.
var kinds = map[string]func() any{
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"v1/PersistentVolumeClaim":               func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"batch/v1/Job":                           func() any { return new(batchv1.Job) },
	"batch/v1/CronJob":                       func() any { return new(batchv1.CronJob) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"rbac.authorization.k8s.io/v1/Role":      func() any { return new(rbacv1.Role) },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any {
		return new(rbacv1.RoleBinding)
	},
}

// manifest is one decoded document and where it came from.
type manifest struct {
	where string // file:document
	obj   any
}

// load decodes every YAML document under the folders strictly: unknown or
// duplicate fields, wrong types and unknown kinds are errors.
func load(t *testing.T, globs ...string) []manifest {
	t.Helper()
	var out []manifest
	for _, g := range globs {
		files, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range splitDocs(b) {
				where := fmt.Sprintf("%s#%d", f, i+1)
				var head struct{ APIVersion, Kind string }
				if err := yaml.Unmarshal(doc, &head); err != nil {
					t.Errorf("%s: not YAML: %v", where, err)
					continue
				}
				mk, ok := kinds[head.APIVersion+"/"+head.Kind]
				if !ok {
					t.Errorf("%s: apiVersion %q kind %q is not one this check knows", where, head.APIVersion, head.Kind)
					continue
				}
				obj := mk()
				if err := yaml.UnmarshalStrict(doc, obj); err != nil {
					t.Errorf("%s: %s: %v", where, head.Kind, err)
					continue
				}
				out = append(out, manifest{where, obj})
			}
		}
	}
	return out
}

// splitDocs cuts a YAML stream at its "---" lines, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func all[T any](ms []manifest) []*T {
	var out []*T
	for _, m := range ms {
		if v, ok := m.obj.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestManifests checks the servekit manifests, and the batch-job ones of
// examples/*/k8s when present, for schema and for consistency.
func TestManifests(t *testing.T) {
	ms := load(t, "k8s/*.yaml", "../examples/*/k8s/*.yaml")
	if len(ms) == 0 {
		t.Fatal("no manifests found")
	}
	deps := all[appsv1.Deployment](ms)
	byName := map[string]*appsv1.Deployment{}
	for _, d := range deps {
		byName[d.Name] = d
		checkPodSpec(t, "Deployment "+d.Name, &d.Spec.Template.Spec, true)
		if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("Deployment %s: selector %v does not match its pod labels %v", d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
	}
	for _, j := range all[batchv1.Job](ms) {
		checkPodSpec(t, "Job "+j.Name, &j.Spec.Template.Spec, false)
	}
	for _, j := range all[batchv1.CronJob](ms) {
		checkPodSpec(t, "CronJob "+j.Name, &j.Spec.JobTemplate.Spec.Template.Spec, false)
	}
	podsOf := func(sel map[string]string) *appsv1.Deployment {
		for _, d := range deps {
			if subset(sel, d.Spec.Template.Labels) {
				return d
			}
		}
		return nil
	}
	services := map[string]*corev1.Service{}
	for _, s := range all[corev1.Service](ms) {
		services[s.Name] = s
		d := podsOf(s.Spec.Selector)
		if d == nil {
			t.Errorf("Service %s: selector %v matches no Deployment's pods", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !hasPort(d, p.TargetPort.String()) {
				t.Errorf("Service %s: target port %s is not a port of Deployment %s", s.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	for _, h := range all[autoscalingv2.HorizontalPodAutoscaler](ms) {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || byName[ref.Name] == nil {
			t.Errorf("HPA %s: scales %s %s, which is not here", h.Name, ref.Kind, ref.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HPA %s: want 2 <= minReplicas <= maxReplicas", h.Name)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("HPA %s: no metrics", h.Name)
		}
	}
	for _, p := range all[policyv1.PodDisruptionBudget](ms) {
		if p.Spec.Selector == nil || podsOf(p.Spec.Selector.MatchLabels) == nil {
			t.Errorf("PDB %s: selector matches no Deployment's pods", p.Name)
		}
	}
	configMaps := map[string]*corev1.ConfigMap{}
	for _, c := range all[corev1.ConfigMap](ms) {
		configMaps[c.Name] = c
	}

	rt := byName["servekit"]
	if rt == nil {
		t.Fatal("no Deployment servekit")
	}
	c := rt.Spec.Template.Spec.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/v2/health/ready" {
		t.Errorf("servekit readiness probe %+v, want GET /v2/health/ready (ready = models loaded and warmed up)", p)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/v2/health/live" {
		t.Errorf("servekit liveness probe %+v, want GET /v2/health/live", p)
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && configMaps[ef.ConfigMapRef.Name] == nil {
			t.Errorf("servekit reads ConfigMap %s, which is not here", ef.ConfigMapRef.Name)
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("servekit args %q: want servekit serve", c.Args)
	}
	flags := serveFlags(t)
	args := map[string]string{}
	for _, a := range c.Args[1:] {
		name, val, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		args[name] = val
		if !slices.Contains(flags, name) {
			t.Errorf("servekit serve arg %q: the binary has no flag --%s", a, name)
		}
	}
	drain, _ := time.ParseDuration(args["drain-delay"])
	exitSecs, _ := strconv.ParseFloat(args["exit-timeout-secs"], 64)
	exit := time.Duration(exitSecs * float64(time.Second))
	if g := rt.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+exit {
		t.Errorf("terminationGracePeriodSeconds must exceed --drain-delay %v + --exit-timeout-secs %v", drain, exit)
	}
	if cm := configMaps["servekit"]; cm != nil {
		for k := range cm.Data {
			if !strings.HasPrefix(k, "SERVEKIT_") {
				t.Errorf("ConfigMap key %s: the server reads SERVEKIT_* variables", k)
			} else if name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "SERVEKIT_"), "_", "-")); !slices.Contains(flags, name) {
				t.Errorf("ConfigMap key %s: servekit serve has no flag --%s to read it", k, name)
			}
		}
		if addr := cm.Data["SERVEKIT_CACHE_REDIS"]; addr != "" {
			host, port, _ := strings.Cut(addr, ":")
			s := services[host]
			if s == nil || !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return fmt.Sprint(p.Port) == port }) {
				t.Errorf("SERVEKIT_CACHE_REDIS %s is not a Service port here", addr)
			}
		}
	}
}

// checkPodSpec holds every workload to the basics: non-root, resources
// requested and limited, probes for long-running servers.
func checkPodSpec(t *testing.T, what string, s *corev1.PodSpec, server bool) {
	t.Helper()
	nonRoot := s.SecurityContext != nil && s.SecurityContext.RunAsNonRoot != nil && *s.SecurityContext.RunAsNonRoot
	for _, c := range s.Containers {
		if c.SecurityContext != nil && c.SecurityContext.RunAsNonRoot != nil {
			nonRoot = *c.SecurityContext.RunAsNonRoot
		}
		if !nonRoot {
			t.Errorf("%s container %s: runAsNonRoot is not set", what, c.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s container %s: no %s request", what, c.Name, r)
			}
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s container %s: no memory limit", what, c.Name)
		}
		if server && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
			t.Errorf("%s container %s: a server needs readiness and liveness probes", what, c.Name)
		}
	}
}

func hasPort(d *appsv1.Deployment, port string) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

// serveFlags lists the flags of servekit serve from its --help.
func serveFlags(t *testing.T) []string {
	t.Helper()
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`).FindAllStringSubmatch(serveHelp(t), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) < 10 {
		t.Fatalf("could not read the flags of servekit serve:\n%s", serveHelp(t))
	}
	return flags
}

// TestStrictDecodingRejects proves the check can fail: a misspelt field,
// a wrong type and an unknown kind are all caught.
func TestStrictDecodingRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelt field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 3\n",
		"wrong type":     "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: eighty}]\n",
		"duplicate key":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: '1', a: '2'}\n",
	} {
		var head struct{ APIVersion, Kind string }
		_ = yaml.Unmarshal([]byte(doc), &head)
		if err := yaml.UnmarshalStrict([]byte(doc), kinds[head.APIVersion+"/"+head.Kind]()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
