package httpapi_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

func Example() {
	h := httpapi.New()
	if err := h.Handle("linear", servingtest.Linear(2)); err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	body := `{"id":"42","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`
	resp, err := srv.Client().Post(srv.URL+"/v2/models/linear/infer", "application/json", strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(out))
	// Output:
	// 200 {"id":"42","model_name":"linear","outputs":[{"name":"y","datatype":"FP32","shape":[1,2],"data":[3,5]}]}
}

func Example_embedding() {
	existing := httptest.NewRecorder() // stands in for a service's own routes
	_ = existing
	h := httpapi.New(httpapi.WithPrefix("/ml"), httpapi.SageMaker("linear"))
	_ = h.Handle("linear", servingtest.Linear(2))

	for _, path := range []string{"/ml/v2/health/ready", "/ping", "/v2/health/ready"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, w.Code)
	}
	// Output:
	// /ml/v2/health/ready 200
	// /ping 200
	// /v2/health/ready 404
}
