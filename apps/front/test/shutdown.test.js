'use strict';
// The front as its own process: start-up log, bad configuration, and the graceful stop on SIGTERM.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const h = require('./helpers');

const SERVER = path.join(__dirname, '..', 'server.js');

function startFront(env) {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.out = '';
  child.stdout.on('data', (d) => { child.out += d; });
  child.stderr.on('data', (d) => { child.out += d; });
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  child.port = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`front did not start:\n${child.out}`)), 10000);
    child.once('exit', () => { clearTimeout(timer); reject(new Error(`front exited:\n${child.out}`)); });
    child.stdout.on('data', () => {
      const m = /front listening on port (\d+)/.exec(child.out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  child.port.catch(() => {}); // awaited by the tests that need it
  return child;
}

// GET without keep-alive: {status, headers, body}; rejects on a connection error.
function get(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

test('bad configuration: message naming the variable, exit status 2', async () => {
  const child = startFront({ ORDERS_URLS: 'orders:8082' });
  const { code } = await child.exited;
  assert.strictEqual(code, 2);
  assert.match(child.out, /front: bad configuration: ORDERS_URLS: /);
});

test('SIGTERM: draining, then the listener closes, in-flight requests finish, exit 0', async (t) => {
  const slow = await h.instance((req, body, res) => setTimeout(() => h.json(res, 200, [{ id: 1 }]), 1200));
  t.after(() => h.close(slow));
  const child = startFront({
    CATALOG_URLS: h.url(slow), ORDERS_URLS: 'http://127.0.0.1:9, http://127.0.0.1:10', SHUTDOWN_DRAIN_SECONDS: '2',
    SERVICE_NAME: 'front-test',
  });
  t.after(() => child.kill('SIGKILL'));
  const port = await child.port;
  assert.match(child.out, /wiring: front \(SERVICE_NAME=front-test\) port=0 drain=2s; calls: catalog \[http:\/\/127\.0\.0\.1:\d+\] from CATALOG_URLS; orders \[http:\/\/127\.0\.0\.1:9, http:\/\/127\.0\.0\.1:10\] from ORDERS_URLS; billing \[http:\/\/localhost:8083\] from default/);
  assert.strictEqual((await get(port, '/health')).status, 200);
  assert.strictEqual((await get(port, '/live')).status, 200);

  const t0 = Date.now();
  child.kill('SIGTERM');
  await h.sleep(200);
  const health = await get(port, '/health');
  assert.strictEqual(health.status, 503);
  assert.deepStrictEqual(JSON.parse(health.body), { status: 'draining' });
  assert.strictEqual((await get(port, '/live')).status, 200);
  const during = await get(port, '/api/orders/1'); // served (502: no orders instance), without keep-alive
  assert.strictEqual(during.status, 502);
  assert.strictEqual(during.headers.connection, 'close');
  assert.strictEqual(during.headers['x-instance-state'], 'draining');

  // a slow request that starts just before the listener closes still gets its answer
  await h.sleep(1600);
  const inFlight = get(port, '/api/products');
  await h.sleep(700);
  await assert.rejects(get(port, '/live'), /ECONNREFUSED/, 'the listener is closed after the drain');
  const r = await inFlight;
  assert.strictEqual(r.status, 200);
  const { code, signal, at } = await child.exited;
  assert.strictEqual(code, 0, child.out);
  assert.strictEqual(signal, null);
  assert.ok(at - t0 >= 2000 && at - t0 < 6000, `stopped after ${at - t0} ms`);
  assert.match(child.out, /SIGTERM: stop requested/);
  assert.match(child.out, /front-test stopped after \d+ ms/);
});
