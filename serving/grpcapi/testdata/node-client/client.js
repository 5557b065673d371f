// An independent client of servekit's gRPC service, for serving/grpcapi's
// tests: Node's @grpc/grpc-js with @grpc/proto-loader reading
// grpc_predict_v2.proto, as a Node team would call a model server.
//
//   node client.js HOST:PORT PROTO < plan.json > results.json
//
// The plan gives the fraud model's rows and the bad requests; the results
// hold each answer's output bits (hex) and each error's gRPC code name, for
// the Go test to compare with REST's.
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [addr, protoPath] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(0, 'utf8'));
// The service imports model_config.proto, which lives beside its Go
// package, serving/modelconfigpb.
const includeDirs = [path.dirname(protoPath), path.join(path.dirname(protoPath), '..', '..', 'modelconfigpb')];
const def = protoLoader.loadSync(path.basename(protoPath), { keepCase: true, longs: String, defaults: true, includeDirs });
const { GRPCInferenceService } = grpc.loadPackageDefinition(def).inference;
const client = new GRPCInferenceService(addr, grpc.credentials.createInsecure());
const codeName = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k.toLowerCase()]));

function call(method, req, md) {
  const meta = new grpc.Metadata();
  for (const [k, v] of Object.entries(md || {})) meta.set(k, v);
  const deadline = new Date(Date.now() + 10000);
  return new Promise((resolve) => {
    client[method](req, meta, { deadline }, (err, resp) => {
      resolve(err ? { code: codeName[err.code], message: err.details } : { code: 'ok', resp });
    });
  });
}

// fp32le packs numbers as little-endian float32, the raw encoding.
function fp32le(values) {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf;
}

// outputBits returns the answer's first output as hex, whichever form the
// server chose: raw_output_contents, or fp32_contents re-packed.
function outputBits(r) {
  if (r.code !== 'ok') return r;
  const resp = r.resp;
  const out = resp.outputs[0];
  const hex = resp.raw_output_contents.length > 0
    ? Buffer.from(resp.raw_output_contents[0]).toString('hex')
    : fp32le(out.contents.fp32_contents).toString('hex');
  return { code: 'ok', name: out.name, datatype: out.datatype, shape: out.shape.map(Number), model: resp.model_name, version: resp.model_version, id: resp.id, hex };
}

const contentsField = { FP32: 'fp32_contents', FP64: 'fp64_contents' };

async function main() {
  const results = {};
  results.live = (await call('ServerLive', {})).resp.live;
  results.ready = (await call('ServerReady', {})).resp.ready;
  const md = await call('ModelMetadata', { name: 'fraud' });
  results.metadata = md.code === 'ok'
    ? { platform: md.resp.platform, inputs: md.resp.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(Number) })) }
    : md;
  results.modelReadyUnknown = (await call('ModelReady', { name: 'nope' })).code;

  const flat = plan.rows.flat();
  const shape = [plan.rows.length, plan.rows[0].length];
  results.typed = outputBits(await call('ModelInfer', {
    model_name: 'fraud', id: 'typed-1',
    inputs: [{ name: 'features', datatype: 'FP32', shape, contents: { fp32_contents: flat } }],
  }));
  results.raw = outputBits(await call('ModelInfer', {
    model_name: 'fraud', model_version: '1', id: 'raw-1',
    inputs: [{ name: 'features', datatype: 'FP32', shape }],
    raw_input_contents: [fp32le(flat)],
  }, { 'x-routing-key': 'user-1' }));

  results.bad = {};
  for (const b of plan.bad) {
    const r = await call('ModelInfer', {
      model_name: b.model, model_version: b.version,
      inputs: [{ name: b.input, datatype: b.dtype, shape: b.shape, contents: { [contentsField[b.dtype]]: b.data } }],
    });
    results.bad[b.name] = r.code;
  }
  process.stdout.write(JSON.stringify(results));
  client.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
