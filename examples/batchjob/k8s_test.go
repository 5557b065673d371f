package main

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestManifests parses the example manifests and checks what the job
// relies on: an Indexed Job whose JOB_SHARD_COUNT equals its completions.
// (The full schema check against k8s.io/api types lives with the other
// manifests' checks.)
func TestManifests(t *testing.T) {
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) != 2 {
		t.Fatalf("manifests %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Spec       struct {
				jobSpec     `yaml:",inline"`
				JobTemplate struct {
					Spec jobSpec `yaml:"spec"`
				} `yaml:"jobTemplate"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		spec := doc.Spec.jobSpec
		if doc.Kind == "CronJob" {
			spec = doc.Spec.JobTemplate.Spec
		}
		if doc.APIVersion != "batch/v1" || spec.CompletionMode != "Indexed" || spec.Completions < 2 {
			t.Errorf("%s: %s %s, %s with %d completions", f, doc.APIVersion, doc.Kind, spec.CompletionMode, spec.Completions)
		}
		var count string
		for _, c := range spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "JOB_SHARD_COUNT" {
					count = e.Value
				}
			}
		}
		if want := string(rune('0' + spec.Completions)); count != want {
			t.Errorf("%s: JOB_SHARD_COUNT %q, want the completions %s", f, count, want)
		}
	}
}

type jobSpec struct {
	CompletionMode string `yaml:"completionMode"`
	Completions    int    `yaml:"completions"`
	Template       struct {
		Spec struct {
			Containers []struct {
				Env []struct{ Name, Value string } `yaml:"env"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}
