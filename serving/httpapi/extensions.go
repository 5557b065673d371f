package httpapi

import (
	"net/http"

	"github.com/servekit/servekit/serving/oip/oipjson"
)

// Triton's extensions over REST: model configuration, statistics and the
// model repository, each answered from the Server in the JSON Triton
// writes (oipjson).

// maxAdminBody bounds a repository request's body: its parameters are a
// few names.
const maxAdminBody = 64 << 10

// modelConfig serves GET /v2/models/{name}[/versions/{v}]/config.
func (h *Handler) modelConfig(w http.ResponseWriter, r *http.Request) {
	c, err := h.srv.Config(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	writeJSON(w, http.StatusOK, oipjson.AppendConfig(nil, c))
}

// statistics serves GET /v2/models[/{name}[/versions/{v}]]/stats.
func (h *Handler) statistics(w http.ResponseWriter, r *http.Request) {
	st, err := h.srv.Statistics(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	writeJSON(w, http.StatusOK, oipjson.AppendStatistics(nil, st))
}

// admin authorises a repository request and reads its body.
func (h *Handler) admin(w http.ResponseWriter, r *http.Request) (string, oipjson.RepositoryRequest, bool) {
	who, err := h.srv.AuthorizeRepository(r)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return "", oipjson.RepositoryRequest{}, false
	}
	bp, err := readBody(w, r, maxAdminBody)
	if err != nil {
		writeError(w, bodyError(err), h.cfg.retryAfter)
		return "", oipjson.RepositoryRequest{}, false
	}
	defer oipjson.PutBuffer(bp)
	req, err := oipjson.DecodeRepositoryRequest(*bp)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return "", req, false
	}
	return who, req, true
}

// repositoryIndex serves POST /v2/repository/index.
func (h *Handler) repositoryIndex(w http.ResponseWriter, r *http.Request) {
	_, req, ok := h.admin(w, r)
	if !ok {
		return
	}
	idx, err := h.srv.RepositoryIndex(r.Context(), req.Ready)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	writeJSON(w, http.StatusOK, oipjson.AppendIndex(nil, idx))
}

// repositoryLoad serves POST /v2/repository/models/{name}/load: 200 with
// an empty body once the model is ready, as Triton answers.
func (h *Handler) repositoryLoad(w http.ResponseWriter, r *http.Request) {
	who, req, ok := h.admin(w, r)
	if !ok {
		return
	}
	if err := h.srv.LoadModel(r.Context(), who, r.PathValue("name"), req.Parameters); err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// repositoryUnload serves POST /v2/repository/models/{name}/unload.
func (h *Handler) repositoryUnload(w http.ResponseWriter, r *http.Request) {
	who, req, ok := h.admin(w, r)
	if !ok {
		return
	}
	if err := h.srv.UnloadModel(r.Context(), who, r.PathValue("name"), req.Parameters); err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	w.WriteHeader(http.StatusOK)
}
