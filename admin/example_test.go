package admin_test

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving/servingtest"
)

// The admin API on a private listener, behind a bearer token.
func ExampleNew() {
	r, err := rollout.New("fraud")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	r.Put("1", servingtest.Linear(2))
	r.Put("2", servingtest.Linear(2))
	h, err := admin.New(admin.Routers{r},
		admin.WithAuthorizer(admin.BearerToken("s3cret")),
		admin.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil { // without an Authorizer (or AllowUnauthenticated) it refuses
		panic(err)
	}
	// In a binary: go http.ListenAndServe("127.0.0.1:9090", h)

	send := func(method, path, body, token string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Println(method, path, w.Code)
	}
	send("PUT", "/v1/models/fraud/weights", `{"1": 90, "2": 10}`, "")
	send("PUT", "/v1/models/fraud/weights", `{"1": 90, "2": 10}`, "s3cret")
	send("PUT", "/v1/models/fraud/weights", `{"1": 90, "2": 5}`, "s3cret")
	send("POST", "/v1/models/fraud/switch", `{"version": "2"}`, "s3cret")
	fmt.Println("weights:", r.Weights())
	// Output:
	// PUT /v1/models/fraud/weights 401
	// PUT /v1/models/fraud/weights 200
	// PUT /v1/models/fraud/weights 400
	// POST /v1/models/fraud/switch 200
	// weights: map[2:100]
}
