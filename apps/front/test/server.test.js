'use strict';
// Runs the front against fake catalog/orders/billing services on loopback.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');

function fakeService(handler) {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => handler(req, body, res));
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}
const url = (srv) => `http://127.0.0.1:${srv.address().port}`;
const json = (res, status, obj) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)); };

test('front proxies to the services', async (t) => {
  const seen = [];
  const catalog = await fakeService((req, body, res) => {
    if (req.url === '/products') json(res, 200, [{ id: 1, name: 'Mug <b>', price_cents: 1299 }]);
    else if (req.url === '/health') json(res, 200, { status: 'ok' });
    else json(res, 404, { error: 'not found' });
  });
  const orders = await fakeService((req, body, res) => {
    seen.push([req.method, req.url, body, req.headers['content-type']]);
    if (req.method === 'POST') json(res, 201, { id: 42, ...JSON.parse(body), status: 'created' });
    else json(res, 404, { error: 'order not found' });
  });
  // billing is down: its port is closed
  const billing = await fakeService(() => {});
  const billingUrl = url(billing);
  await new Promise((r) => billing.close(r));

  process.env.CATALOG_URL = url(catalog);
  process.env.ORDERS_URL = url(orders) + '/';
  process.env.BILLING_URL = billingUrl;
  delete require.cache[require.resolve('../server.js')];
  const { createApp } = require('../server.js');
  const front = await new Promise((resolve) => { const s = createApp().listen(0, '127.0.0.1', () => resolve(s)); });
  const base = url(front);
  t.after(() => { front.close(); catalog.close(); orders.close(); });

  let r = await fetch(base + '/health');
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(await r.json(), { status: 'ok' });

  r = await fetch(base + '/');
  assert.strictEqual(r.status, 200);
  const html = await r.text();
  assert.match(html, /Mug &lt;b&gt;/);
  assert.match(html, /12\.99/);

  r = await fetch(base + '/api/products');
  assert.deepStrictEqual(await r.json(), [{ id: 1, name: 'Mug <b>', price_cents: 1299 }]);

  r = await fetch(base + '/api/orders', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"product_id":1,"quantity":2}',
  });
  assert.strictEqual(r.status, 201);
  assert.deepStrictEqual(await r.json(), { id: 42, product_id: 1, quantity: 2, status: 'created' });
  assert.deepStrictEqual(seen[0], ['POST', '/orders', '{"product_id":1,"quantity":2}', 'application/json']);

  r = await fetch(base + '/api/orders/7');
  assert.strictEqual(r.status, 404);

  r = await fetch(base + '/api/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad' });
  assert.strictEqual(r.status, 400);

  r = await fetch(base + '/api/invoices/42');
  assert.strictEqual(r.status, 502);
  assert.deepStrictEqual(await r.json(), { error: 'billing unreachable' });

  r = await fetch(base + '/health?deep=1');
  assert.strictEqual(r.status, 503);
  assert.deepStrictEqual((await r.json()).checks, { catalog: 'ok', orders: 'error', billing: 'unreachable' });
});
