// Package repository serves the models of a directory tree, the layout of
// Triton and TF Serving, and keeps them in step with the disk: new versions
// are loaded and warmed before they get traffic, changed files are
// hot-reloaded, removed versions are unloaded once their requests finish.
// Each model is a rollout.Router holding its versions.
//
// Reach for Open first. It takes a LoadFunc, which turns one version's
// files into a serving.Predictor; the package never imports a backend, so
// it serves ONNX models, anything else, or fakes in tests. With ONNX
// Runtime:
//
//	load := func(ctx context.Context, v repository.Version) (serving.Predictor, error) {
//		p := struct{ Threads int `json:"intra_op_threads"` }{Threads: onnx.DefaultIntraOpThreads}
//		if err := v.DecodeParameters(&p); err != nil { // config.json "parameters"
//			return nil, err
//		}
//		return onnx.Load(v.Path, onnx.WithName(v.Model), onnx.WithVersion(v.Version), onnx.WithIntraOpThreads(p.Threads))
//	}
//	h := httpapi.New()
//	repo, err := repository.Open(ctx, "models", load,
//		repository.WithModelHook(func(model string, r *rollout.Router) {
//			if r == nil {
//				h.Remove(model, "")
//			} else {
//				h.Handle(model, telemetry.New(r)) // telemetry above the router
//			}
//		}))
//	defer repo.Close()
//
// Every version of every model is then served over HTTP, including
// /v2/models/{m}/versions/{v}/ready, which answers 503 while a version
// loads or after it failed, 200 when it is ready (also while its new files
// load: the old ones serve), and 404 once it is gone. A LoadFunc may
// return a chain (per-version cache and batcher, which belong below the
// router); the repository owns what it returns and closes it. One response
// cache may serve every version and outlive their reloads (examples/realtime
// shares one): cache keys carry the model's content fingerprint
// (serving.Metadata.Fingerprint), so a hot reload's new weights never get
// the old ones' answers.
//
// A Repository is safe for concurrent use. Changes to one model (a poll,
// Load, Unload) are serialised; different models load in parallel, at most
// WithLoadConcurrency versions at a time. Close stops the watcher, ends the
// loads in progress and closes every router.
//
// # Layout
//
//	<root>/<model>/config.json          optional
//	<root>/<model>/<version>/model.onnx  the model file (WithModelFile, default_model_filename)
//	<root>/<model>/<version>/...         anything beside it (external data)
//
// Model names are 1 to 128 of A-Z a-z 0-9 _ . - not starting with a dot:
// safe in URLs, file names and metric labels. Versions are positive
// decimal integers without a leading zero, as in Triton ("1", "42"; not
// "0", "01", "v2"), so one version has one spelling. Other entries are
// ignored: hidden ones (a leading dot: .git, a ConfigMap's ..data)
// silently, invalid names and non-numeric directories with a warning
// logged once. A version directory without its model file is listed as
// failed with that reason.
//
// # config.json
//
// Optional; every field has a default. Field names follow Triton's model
// configuration in JSON form. A full example:
//
//	{
//	  "version_policy": {"latest": {"num_versions": 2}},
//	  "traffic": "manual",
//	  "default_model_filename": "model.onnx",
//	  "parameters": {"intra_op_threads": 2},
//	  "model_warmup": [
//	    {"name": "one-chunk", "count": 3, "inputs": {
//	      "input": {"data_type": "FP32", "dims": [1, 512], "random_data": true},
//	      "sr":    {"data_type": "INT64", "dims": [], "data": [16000]},
//	      "h":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true},
//	      "c":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true}
//	    }},
//	    {"name": "recorded", "request_file": "warmup/request.json"}
//	  ]
//	}
//
// JSON, not Triton's protobuf text format: Go reads it without a
// dependency, and its fields map one to one to Triton's. Unknown fields
// are errors (a misspelt "num_version" must not silently mean "latest
// 1"), as are contradictions and absurd sizes; ParseConfig checks a file
// the same way, for CI. A config that does not parse is reported on the
// model (ModelStatus.Reason, and logged); what is loaded keeps serving,
// and nothing new loads until it is fixed. "parameters" is handed to the
// LoadFunc unread (Version.Parameters, DecodeParameters): the backend's
// own options.
//
// # Version policy
//
// version_policy is Triton's: {"latest": {"num_versions": N}} serves the N
// highest versions (the default is latest 1, as in Triton and TF
// Serving), {"all": {}} every version, {"specific": {"versions": [1, 3]}}
// those listed. A version that failed to load does not count: under latest
// 1, if version 3 fails, version 2 keeps (or starts) serving, and version 3
// stays listed as failed, with its reason, until its files change.
//
// # Traffic
//
// "traffic" says how requests that name no version reach the versions:
//
//   - "latest" (default; Triton's and TF Serving's behaviour): the highest
//     ready version takes all of them, switched atomically once it is
//     loaded and warmed; when it fails or goes, the next one down takes
//     over. The repository moves traffic only when the highest ready
//     version changes, so an operator's weights hold in between.
//   - "manual": new versions join with weight 0, reachable when pinned
//     (/versions/{v}, X-Model-Version) and ready for a canary, a rollout
//     plan or a blue-green Switch on the router. The repository sets
//     weights only when no ready version has any (at start: the highest
//     ready version takes 100 %), and when a weighted version is removed
//     (its weight goes to the heaviest remaining one), so a model with a
//     ready version is never unreachable.
//
// # Warm-up
//
// Off unless model_warmup lists samples, as in Triton. Each sample is a
// request, sent Count times through Predict on the loaded Predictor before
// the version is put in the router. Inputs give a datatype (FP32, or
// Triton's TYPE_FP32), a full shape (dims include the batch dimension; []
// is a scalar) and one of zero_data, random_data (reproducible: seeded by
// model, version, sample and input) or data (values as in a V2 request).
// request_file names a V2 JSON infer request inside the model directory.
// Warm-up requests carry cache_bypass, so a cache in the chain neither
// answers nor keeps them. Real shapes matter: zeros with every dynamic
// dimension set to 1 (what onnx.WithWarmup does) make Silero VAD fail
// inside ONNX Runtime, which is why the repository asks for shapes. A
// failed warm-up fails the version, with the model's error as the reason.
//
// # Loads, reloads and unloads
//
// A scan computes each version's fingerprint: the name, size and
// modification time of every file under the version directory, plus the
// config fields a load depends on (parameters, warm-up, file name). A new
// fingerprint reloads the version; changing the policy or traffic mode
// does not. Size and time, not content, so polling a large model stays
// cheap: replace files by rename (write elsewhere, then mv), so a poll
// never sees half a file. A half-written file that fails to load is simply
// retried when its fingerprint changes again; a failed fingerprint is
// not retried before that (no load loop on a broken file), except by Load.
//
//   - New version: a placeholder that is not ready enters the router at
//     once (state loading; requests pinned to it get Unavailable), then the
//     real Predictor replaces it once loaded and warmed (ready).
//   - Changed files: the old Predictor keeps serving while the new one
//     loads; router.Put swaps them, requests in flight finish on the old
//     one, which is then closed. If the new files fail, the old ones keep
//     serving and VersionStatus.Reason says why (state stays ready).
//   - Failed first load: a placeholder carrying the reason stays (state
//     failed), so readiness says 503, not 404.
//   - Removed, or dropped by the policy: the version leaves the router and
//     is closed when its in-flight requests have finished (router.Remove,
//     bounded by WithDrainTimeout). Traffic moves off it first; an active
//     rollout plan it is part of is aborted (logged), as deleting an Argo
//     Rollout's canary ends it. Should the router still refuse, the
//     version stays and serves, with the refusal as its reason.
//   - Removed model directory: the hook hears first, then the router closes.
//
// Loads run with a timeout (WithLoadTimeout) and under the repository's
// control: a LoadFunc that errs, panics, hangs past its timeout or returns
// nothing fails that version only. Open never fails because a model does:
// a server always starts and reports what it could not load (Status, and a
// log line for every transition).
//
// # Watching and explicit control
//
// The root is polled every WithPollInterval (default 2 s; 0 turns it
// off). Sync does one poll now. Load and Unload are Triton's explicit
// model control; with Models and Router they make a Repository what the
// admin API needs (rollout.NewAdmin(repo, rollout.WithLoader(repo)) is a
// rollout.Registry and a rollout.Loader), so an operator loads and
// unloads versions over HTTP. Load reads
// a model or one version from disk now, retrying failures, and returns the
// load's error; Unload unloads one, and it stays unloaded, whatever the
// watcher sees, until Load. WithExplicit is Triton's "explicit" mode: only
// named models at start, others only through Load; the watcher then keeps
// the loaded models' versions in step.
//
// # Safety
//
// Names from callers (an admin API's URL) are validated before they touch
// the file system: no "..", no separators, no hidden names, no odd
// characters. Every path is resolved with filepath.EvalSymlinks and must
// stay inside the resolved root: a link within the repository (a version
// shared between models, a ConfigMap's ..data) is followed, one that leads
// out is refused, for model directories, version directories, model files
// and warm-up request files alike. The repository trusts whoever can write
// the root itself; containment keeps everyone else, and every mistake, out.
//
// # Status
//
// Status is the repository index, as Triton's: per model its policy,
// traffic mode and config problem; per version its State (loading, ready,
// failed, unloading), reason, load time and fingerprint. Weights,
// in-flight counts and per-version request statistics are the router's
// (Router(model).Status()).
package repository
