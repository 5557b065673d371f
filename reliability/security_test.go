package reliability_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestModelNamesCannotReachTheFileSystem asks a server that serves a model
// repository for model names that climb out of it, in every spelling a
// URL allows: each gets a 4xx JSON error (or the mux's redirect for a
// path it cleans), and nothing outside the repository is ever loaded.
func TestModelNamesCannotReachTheFileSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	putFile(t, filepath.Join(repo, "fraud", "1", "model.onnx"), fraudVariant(t, 0))
	putFile(t, filepath.Join(root, "outside", "1", "model.onnx"), fraudVariant(t, 1))
	srv := server(t, "--model-repository", repo, "--model-control-mode", "poll", "--repository-poll-secs", "0.1")
	host := strings.TrimPrefix(srv.Base, "http://")
	body := fraudRow(1)
	for _, name := range []string{
		"..", "%2e%2e", "%2E%2E", "..%2Foutside", "..%2foutside", "%2e%2e%2foutside", "..%5Coutside",
		"fraud%2F..%2F..%2Foutside", "%00", "fraud%00", ".", "outside", "..%252Foutside", "fraud%2F1%2Fmodel.onnx",
	} {
		for _, path := range []string{"/v2/models/" + name + "/infer", "/v2/models/" + name + "/versions/1/infer", "/v1/models/" + name + ":predict"} {
			status, resp := rawPost(t, host, path, body)
			switch {
			case status == http.StatusOK:
				t.Errorf("POST %s: 200 %s", path, resp)
			case status >= 500:
				t.Errorf("POST %s: %d %s", path, status, resp)
			case status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect:
				// ServeMux cleaning "." and ".." segments: nothing served.
			case !json.Valid(resp):
				t.Errorf("POST %s: %d with a body that is not JSON: %q", path, status, resp)
			}
		}
	}
	if strings.Contains(srv.Output(), "outside") {
		t.Errorf("the server touched the model outside its repository:\n%s", srv.Output())
	}
	if _, err := os.Stat(filepath.Join(root, "outside", "1", "model.onnx")); err != nil {
		t.Fatal(err)
	}
}

// rawPost sends a request line exactly as given (http.Client would clean
// or re-escape the path) and returns the status and body.
func rawPost(t *testing.T, host, path string, body []byte) (int, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req bytes.Buffer
	req.WriteString("POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nConnection: close\r\n")
	req.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	req.Write(body)
	if _, err := c.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
