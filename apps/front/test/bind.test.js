'use strict';
// BIND_ADDRESS: one address or a list; unset listens on every interface; a bad value is a configuration error.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { createApp, loadConfig, listen } = require('../server');
const { ConfigError } = require('../upstream');

function get(host, port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/live', timeout: 2000 }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

test('BIND_ADDRESS is parsed as a list, unset means every interface', () => {
  assert.deepStrictEqual(loadConfig({}).bindAddresses, []);
  assert.deepStrictEqual(loadConfig({ BIND_ADDRESS: ' 127.0.0.1 , [::1]' }).bindAddresses, ['127.0.0.1', '::1']);
  assert.throws(() => loadConfig({ BIND_ADDRESS: '127.0.0.1,' }), ConfigError);
  assert.throws(() => loadConfig({ BIND_ADDRESS: 'not an address' }), /BIND_ADDRESS/);
});

test('the front listens only on the given address', async () => {
  const cfg = { ...loadConfig({ BIND_ADDRESS: '127.0.0.1', PORT: '0' }), drainSeconds: 0 };
  const app = createApp(cfg);
  let server;
  const port = await new Promise((resolve) => { server = listen(app, cfg, (p) => resolve(p)); });
  try {
    assert.strictEqual(await get('127.0.0.1', port), 200);
    // 127.0.0.2 is loopback too, but not the bound address: nothing listens there.
    await assert.rejects(get('127.0.0.2', port));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
