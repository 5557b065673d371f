// Peer server for the HTTP comparison (bench/http.sh): onnxruntime-node
// 1.29.0 behind node:http, serving one model with the same Open Inference
// Protocol V2 JSON as servekit (POST /v2/models/{name}/infer, FP32 inputs).
// Usage: node server.js MODEL.onnx PORT [NAME]
'use strict';
const http = require('node:http');
const ort = require('onnxruntime-node');

const [modelPath, port = '8081', name = 'fraud'] = process.argv.slice(2);
const route = `/v2/models/${name}/infer`;

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function main() {
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionProviders: ['cpu'],
  });
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v2/health/ready') return send(res, 200, {});
    if (req.method !== 'POST' || req.url !== route) return send(res, 404, { error: 'not found' });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let r;
      try {
        r = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        return send(res, 400, { error: 'malformed JSON: ' + e.message });
      }
      try {
        const feeds = {};
        for (const inp of r.inputs || []) {
          if (inp.datatype !== 'FP32') return send(res, 400, { error: `input ${inp.name}: want FP32` });
          feeds[inp.name] = new ort.Tensor('float32', Float32Array.from(inp.data.flat(Infinity)), inp.shape);
        }
        const out = await session.run(feeds);
        const outputs = Object.entries(out).map(([n, t]) => ({
          name: n, datatype: 'FP32', shape: t.dims, data: Array.from(t.data),
        }));
        const answer = { model_name: name, outputs };
        if (r.id !== undefined) answer.id = r.id;
        send(res, 200, answer);
      } catch (e) {
        send(res, 400, { error: String(e.message || e) });
      }
    });
  });
  server.keepAliveTimeout = 120000;
  // Port 0 picks a free port; the line says which (the Go tests read it).
  server.listen(Number(port), '127.0.0.1', () => console.log(`node peer serving ${modelPath} on http://127.0.0.1:${server.address().port}${route}`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => { console.error(e); process.exit(1); });
