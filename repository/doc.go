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
//		if err := v.DecodeParameters(&p); err != nil { // the configuration's "parameters"
//			return nil, err
//		}
//		return onnx.Load(v.Path, onnx.WithName(v.Model), onnx.WithVersion(v.Version), onnx.WithIntraOpThreads(p.Threads))
//	}
//	srv := oip.NewServer()
//	repo, err := repository.Open(ctx, "models", load,
//		repository.WithServer(srv, telemetry.Middleware())) // telemetry above the router
//	defer repo.Close()
//	http.ListenAndServe(":8080", httpapi.New(httpapi.WithServer(srv)))
//
// Every version of every model is then served over HTTP (and gRPC, with
// grpcapi.New(srv)), including
// /v2/models/{m}/versions/{v}/ready, which answers 503 while a version
// loads or after it failed, 200 when it is ready (also while its new files
// load: the old ones serve), and 404 once it is gone. A LoadFunc may
// return a chain (per-version cache and batcher, which belong below the
// router); the repository owns what it returns and closes it. One response
// cache may serve every version and outlive their reloads (servekit serve
// shares one): cache keys carry the model's content fingerprint
// (serving.Metadata.Fingerprint), so a hot reload's new weights never get
// the old ones' answers.
//
// WithServer makes the repository the Server's model repository too:
// Triton's model-configuration extension serves each model's
// configuration, and its repository extension (index, load, unload) the
// repository's Index, LoadModel and UnloadModel, once the Server turns
// repository control on (oip.WithRepositoryControl, an admin capability).
// WithModelHook is the lower-level way: a function told of each router
// as it comes and goes, for a transport of your own. The repository
// imports neither transport.
//
// A Repository is safe for concurrent use. Changes to one model (a poll,
// Load, Unload) are serialised; different models load in parallel, at most
// WithLoadConcurrency versions at a time. Close stops the watcher, ends the
// loads in progress and closes every router.
//
// # Layout
//
//	<root>/<model>/config.pbtxt          optional: Triton's model configuration
//	<root>/<model>/config.json           or the same in JSON form, with servekit's extras
//	<root>/<model>/<version>/model.onnx  the model file (WithModelFile, default_model_filename)
//	<root>/<model>/<version>/...         anything beside it (external data)
//	<root>/<model>/warmup/...            warm-up data files (input_data_file, request_file)
//
// Model names are 1 to 128 of A-Z a-z 0-9 _ . - not starting with a dot:
// safe in URLs, file names and metric labels. Versions are positive
// decimal integers without a leading zero, as in Triton ("1", "42"; not
// "0", "01", "v2"), so one version has one spelling. Other entries are
// ignored: hidden ones (a leading dot: .git, a ConfigMap's ..data) and
// Triton's warmup/ and configs/ folders silently, invalid names and
// non-numeric directories with a warning logged once. A version directory
// without its model file is listed as failed with that reason.
//
// # Configuration
//
// A Triton repository serves unchanged: config.pbtxt is Triton's
// ModelConfig in protobuf text format (package modelconfigpb has the
// schema, every field of it), read with prototext. config.json takes the
// same fields in JSON form (what Triton's model-configuration endpoint
// prints; proto or camelCase names), plus servekit's own: "traffic",
// warm-up samples with inline "data" or a "request_file", data types
// without the TYPE_ prefix, and parameters as plain JSON values, so the
// config.json files written before servekit read config.pbtxt keep
// working. A model directory holds at most one of the two. A field
// outside Triton's schema and servekit's extras is an error (a misspelt
// "num_version" must not silently mean "latest 1"), as are
// contradictions and absurd sizes; ParseConfig and ParseConfigText check
// a file the same way, for CI. A config that does not parse is reported on
// the model (ModelStatus.Reason, and logged); what is loaded keeps
// serving, and nothing new loads until it is fixed.
//
// What servekit does with each field, as Triton defines it:
//
//	name                          honoured: must equal the directory name
//	platform, backend             to the loader (servekit serve: ONNX Runtime's only);
//	                              platform "ensemble" refused
//	version_policy                honoured (below)
//	max_batch_size                honoured: the implicit batch dimension of dims; a request
//	                              with more rows is refused, as in Triton
//	input, output                 honoured: name, data_type, dims and reshape are checked
//	                              against the loaded model as Triton's ONNX Runtime backend
//	                              checks them; clients see dims, reshape is applied both
//	                              ways, outputs not listed are not served, and an image
//	                              format needs three dims
//	input.optional                ignored: a request must send every model input
//	input.allow_ragged_batch      ignored: requests of different shapes never share a batch
//	output.label_filename         ignored: the classification extension takes the model's own labels
//	dynamic_batching              mapped by the loader to package batch (Config.Batching):
//	                              max_batch_size → WithMaxBatchRows,
//	                              preferred_batch_size → WithPreferredBatchRows,
//	                              max_queue_delay_microseconds → WithMaxDelay,
//	                              priority_levels, default_priority_level → WithPriorityLevels,
//	                              default_queue_policy.max_queue_size → WithMaxQueueRows
//	                              (rows: one per one-row request),
//	                              default_timeout_microseconds (REJECT) → a deadline,
//	                              allow_timeout_override: a request's own deadline applies
//	  timeout_action DELAY        ignored: no timeout applies
//	  preserve_ordering           ignored: each request is answered on its own call
//	  priority_queue_policy       ignored: the default queue policy covers every level
//	sequence_batching             refused: stateful sequences are not implemented
//	ensemble_scheduling           refused: ensembles are not implemented
//	batch_input, batch_output     refused: ragged batching is not implemented
//	instance_group                mapped by the loader (Config.Instances), the first group:
//	                              KIND_CPU or KIND_GPU and its first gpu place the session,
//	                              count bounds the batches running at once; other groups,
//	                              other gpus, rate_limiter, host_policy... ignored
//	default_model_filename        honoured
//	parameters                    to the loader (Version.Parameters, DecodeParameters)
//	model_warmup                  honoured (below)
//	response_cache.enable         mapped by the loader (Config.ResponseCache): a cache layer per version
//	optimization.graph.level      mapped by the loader (Config.GraphOptimization)
//	optimization (the rest), cc_model_filenames, metric_tags, model_operations,
//	  model_repository_agents, model_metrics, runtime    ignored
//	model_transaction_policy      decoupled refused: one request gets one response
//
// Ignored is never silent: such fields are listed in ModelStatus.Ignored
// and logged once per configuration, with why; WithStrictConfig refuses
// them instead, as Triton's --strict-model-config makes a configuration
// say all it means. servekit never completes a configuration from the
// model to decide how to serve it, as Triton's auto-complete does: an
// unset max_batch_size is 0, no batching. (The model-configuration
// extension shows the configuration completed with what the model says,
// name, platform, inputs and outputs, as Triton's clients expect to read
// it; oip.Server.Config.)
//
// The repository cannot apply the loader's fields itself: applying them
// means building the version's chain (a batcher, a cache, a device), which
// is the caller's to compose, and package repository imports neither
// batch nor cache. So the parsed configuration goes to the LoadFunc
// (Version.Config), whose accessors give each setting in servekit's terms,
// and the caller says which it applies with WithLoaderFields; any other
// that is set is reported as ignored. cmd/servekit (triton.go) is the
// reference mapping.
//
// # Version policy
//
// version_policy is Triton's: latest { num_versions: N } serves the N
// highest versions (the default is latest 1, as in Triton and TF
// Serving), all { } every version, specific { versions: [1, 3] } those
// listed. A version that failed to load does not count: under latest
// 1, if version 3 fails, version 2 keeps (or starts) serving, and version 3
// stays listed as failed, with its reason, until its files change.
//
// # Traffic
//
// "traffic" (servekit's own, config.json only) says how requests that name
// no version reach the versions:
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
// request, sent Count times through Predict on the loaded Predictor (as
// clients see it: reshapes apply) before the version is put in the router.
// Inputs give a datatype (FP32, or Triton's TYPE_FP32), a shape and one of
// zero_data, random_data (reproducible: seeded by model, version, sample
// and input), input_data_file (Triton's: one row's raw values, in the
// model's warmup/ folder) or data (servekit's: values as in a V2 request).
// As in Triton, when the model batches (max_batch_size > 0) dims leave out
// the batch dimension and the request has batch_size rows (default 1),
// each a copy of the values; without batching dims are the full shape ([]
// is a scalar). request_file (servekit's) names a V2 JSON infer request
// inside the model directory.
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
// configuration a load depends on (all of it but the policy and traffic
// mode, plus the file name). A new fingerprint reloads the version;
// changing the policy or traffic mode does not. Size and time, not content, so polling a large model stays
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
// admin API needs (admin.New(repo, admin.WithLoader(repo), auth): it is an
// admin.Registry and an admin.Loader), so an operator loads and
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
// traffic mode, config problem and ignored fields; per version its State (loading, ready,
// failed, unloading), reason, load time and fingerprint. Weights,
// in-flight counts and per-version request statistics are the router's
// (Router(model).Status()).
package repository
