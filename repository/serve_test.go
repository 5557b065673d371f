package repository_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// A repository given WithServer serves its models on the oip.Server as
// they come and go, and is the Server's model repository: Triton's index
// (every version with its state, a model not loaded once, UNAVAILABLE),
// load and unload of whole models, and the configuration of each model,
// its config.pbtxt completed from the model as Triton's auto-complete
// does.
func TestServedOnAnOIPServer(t *testing.T) {
	root := tree(t, map[string]string{
		"a/config.pbtxt": `version_policy: { all: {} }` + "\n" + `parameters: { key: "k" value: { string_value: "v" } }`,
		"a/1/model.onnx": "ok",
		"a/2/model.onnx": "fail",
		"b/1/model.onnx": "ok",
		"c/1/model.onnx": "ok",
	})
	s := oip.NewServer(oip.WithRepositoryControl(func(*http.Request) (string, error) { return "test", nil }))
	var mw []string
	wrap := func(next serving.Predictor) serving.Predictor {
		mw = append(mw, "wrapped")
		return next
	}
	f := newLoader()
	open(t, root, f, repository.WithServer(s, wrap), repository.WithExplicit("a", "b"))
	if got := fmt.Sprint(s.Models()); got != "[a b]" || len(mw) != 2 {
		t.Fatalf("served %s (middleware applied %d times), want [a b] each wrapped", got, len(mw))
	}
	idx, err := s.RepositoryIndex(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := "[{a 1 READY } {a 2 UNAVAILABLE fake: a/2: corrupt model file: fail} {b 1 READY } {c  UNAVAILABLE unloaded}]"
	if got := fmt.Sprint(idx); got != want {
		t.Errorf("index %s\nwant  %s", got, want)
	}
	if ready, _ := s.RepositoryIndex(context.Background(), true); len(ready) != 2 {
		t.Errorf("ready index %v, want a/1 and b/1", ready)
	}

	c, err := s.Config("a", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.GetName() != "a" || c.GetParameters()["k"].GetStringValue() != "v" || len(c.GetInput()) != 1 || c.GetInput()[0].GetName() != "x" ||
		fmt.Sprint(c.GetInput()[0].GetDims()) != "[-1 -1]" || c.GetModelTransactionPolicy() == nil {
		t.Errorf("config %v: want config.pbtxt's with inputs completed from the model", c)
	}

	ctx := context.Background()
	if err := s.LoadModel(ctx, "test", "c", nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ModelReady("c", "1"); !ok || err != nil {
		t.Errorf("c after load: ready %v, %v", ok, err)
	}
	if err := s.UnloadModel(ctx, "test", "b", map[string]any{"unload_dependents": false}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModelReady("b", ""); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("b after unload: %v, want NotFound", err)
	}
	if err := s.LoadModel(ctx, "test", "nope", nil); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("loading a model not on disk: %v, want NotFound", err)
	}
	if err := s.LoadModel(ctx, "test", "c", map[string]any{"config": "{}"}); serving.CodeOf(err) != serving.Unimplemented {
		t.Errorf("a config override: %v, want Unimplemented", err)
	}
}

// Repository control is an admin capability: without
// WithRepositoryControl the Server refuses it, repository or not, and the
// authoriser it was given decides who may.
func TestRepositoryControlIsOffUnlessEnabled(t *testing.T) {
	root := tree(t, map[string]string{"a/1/model.onnx": "ok"})
	s := oip.NewServer()
	open(t, root, newLoader(), repository.WithServer(s))
	if _, err := s.RepositoryIndex(context.Background(), false); serving.CodeOf(err) != serving.Unimplemented {
		t.Errorf("index with control off: %v, want Unimplemented", err)
	}
	if _, err := s.AuthorizeRepository(httptest.NewRequest(http.MethodPost, "/v2/repository/index", nil)); serving.CodeOf(err) != serving.Unimplemented {
		t.Errorf("authorize with control off: %v, want Unimplemented", err)
	}
	if ok, err := s.ModelReady("a", ""); !ok || err != nil {
		t.Errorf("the model is served all the same: %v %v", ok, err)
	}
}
