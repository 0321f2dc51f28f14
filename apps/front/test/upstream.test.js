'use strict';
// The client of the services: env parsing, instance order, failover and POST retry rules,
// against real servers on loopback.
const test = require('node:test');
const assert = require('node:assert');
const { Upstream, parseUrlList, urlsFromEnv, ConfigError } = require('../upstream');
const { loadConfig } = require('../server');
const h = require('./helpers');

test('URL lists: trimmed, empty items dropped, trailing slashes removed', () => {
  assert.deepStrictEqual(parseUrlList(' http://h1:8081/, ,http://h2:8081 ,https://[::1]:8443', 'X_URLS'),
    ['http://h1:8081', 'http://h2:8081', 'https://[::1]:8443']);
  assert.deepStrictEqual(parseUrlList(undefined, 'X_URLS'), []);
  for (const bad of ['h2:8081', 'ftp://h', 'http://u:pw@h:1', 'http://h:1/path', 'http://h:1?x=1']) {
    assert.throws(() => parseUrlList(`http://ok:1,${bad}`, 'ORDERS_URLS'),
      (err) => err instanceof ConfigError && err.message.startsWith('ORDERS_URLS: ') && !err.message.includes('pw'));
  }
});

test('<APP>_URLS, then the deprecated <APP>_URL, then the default', () => {
  assert.deepStrictEqual(urlsFromEnv({}, 'catalog', 'http://localhost:8081'),
    { urls: ['http://localhost:8081'], source: 'default' });
  assert.deepStrictEqual(urlsFromEnv({ CATALOG_URL: 'http://old:8081/' }, 'catalog', 'http://localhost:8081'),
    { urls: ['http://old:8081'], source: 'CATALOG_URL (deprecated)' });
  assert.deepStrictEqual(
    urlsFromEnv({ CATALOG_URLS: 'http://a:8081,http://b:8081', CATALOG_URL: 'http://old:8081' }, 'catalog', 'x'),
    { urls: ['http://a:8081', 'http://b:8081'], source: 'CATALOG_URLS' });
  assert.deepStrictEqual(urlsFromEnv({ CATALOG_URLS: ' , ', CATALOG_URL: 'http://old:1' }, 'catalog', 'x').urls,
    ['http://old:1']);
});

test('configuration of the front', () => {
  const cfg = loadConfig({ PORT: '3001', ORDERS_URLS: 'http://o1:8082,http://o2:8082', BILLING_URL: 'http://b:8083' });
  assert.strictEqual(cfg.port, 3001);
  assert.strictEqual(cfg.serviceName, 'front');
  assert.strictEqual(cfg.drainSeconds, 5);
  assert.deepStrictEqual(cfg.services.orders.urls, ['http://o1:8082', 'http://o2:8082']);
  assert.deepStrictEqual(cfg.services.billing.urls, ['http://b:8083']);
  assert.deepStrictEqual(cfg.services.catalog.urls, ['http://localhost:8081']);
  assert.throws(() => loadConfig({ SHUTDOWN_DRAIN_SECONDS: '-1' }), /SHUTDOWN_DRAIN_SECONDS/);
  assert.throws(() => loadConfig({ PORT: 'x' }), /PORT/);
  assert.throws(() => loadConfig({ CATALOG_URLS: 'catalog:8081' }), /CATALOG_URLS/);
});

test('instances are tried from a rotating start, failed ones last', () => {
  const u = new Upstream('catalog', ['http://a', 'http://b', 'http://c']);
  assert.deepStrictEqual(u.order(0), [0, 1, 2]);
  assert.deepStrictEqual(u.order(0), [1, 2, 0]);
  assert.deepStrictEqual(u.order(0), [2, 0, 1]);
  u.downUntil[1] = 100;
  assert.deepStrictEqual(u.order(50), [0, 2, 1]);
  assert.deepStrictEqual(u.order(150), [1, 2, 0]);
  assert.deepStrictEqual(new Upstream('svc', ['http://svc']).order(0), [0, 0], 'a single URL is tried twice');
});

test('load spreads over the instances; a stopped instance costs nothing', async (t) => {
  const a = await h.instance((req, body, res) => h.json(res, 200, { from: 'a' }));
  const b = await h.instance((req, body, res) => h.json(res, 201, { from: 'b' }));
  t.after(() => Promise.all([h.close(a), h.close(b)]));
  const dead = await h.closedUrl();
  const u = new Upstream('orders', [h.url(a), dead, h.url(b)]);
  for (let i = 0; i < 30; i++) {
    const r = i % 2 ? await u.post('/orders', JSON.stringify({ i })) : await u.get('/orders/1');
    assert.ok(r.status === 200 || r.status === 201);
  }
  assert.strictEqual(a.requests + b.requests, 30);
  assert.ok(a.requests >= 10 && b.requests >= 10, `spread ${a.requests}/${b.requests}`);
});

test('a POST moves on after connection refused, connect timeout, or 503 starting/draining', async (t) => {
  const starting = await h.instance((req, body, res) => h.json(res, 503, {}, { 'x-instance-state': 'starting' }));
  const draining = await h.instance((req, body, res) => h.json(res, 503, {}, { 'x-instance-state': 'draining' }));
  const ok = await h.instance((req, body, res) => h.json(res, 201, { id: 1 }));
  const hole = await h.blackhole();
  t.after(() => { if (hole) hole.stop(); return Promise.all([h.close(starting), h.close(draining), h.close(ok)]); });
  const urls = [await h.closedUrl(), h.url(starting), h.url(draining)];
  if (hole) urls.push(hole.url);
  else t.diagnostic('python3 missing: connect timeout not exercised');
  urls.push(h.url(ok));
  const u = new Upstream('orders', urls, { connectTimeoutMs: 300 });
  const t0 = Date.now();
  const r = await u.post('/orders', '{"product_id":1}');
  assert.strictEqual(r.status, 201);
  assert.deepStrictEqual(ok.bodies, ['{"product_id":1}']);
  assert.strictEqual(starting.requests, 1);
  assert.strictEqual(draining.requests, 1);
  if (hole) assert.ok(Date.now() - t0 >= 250, 'waited for the connect timeout');
});

test('a POST is not repeated after a 503 from a working instance or a broken connection', async (t) => {
  const busy = await h.instance((req, body, res) => h.json(res, 503, { error: 'stored but not queued', id: 7 }));
  const ok = await h.instance((req, body, res) => h.json(res, 200, {}));
  const crash = await h.hangup();
  t.after(() => Promise.all([h.close(busy), h.close(ok), new Promise((r) => crash.close(r))]));

  let r = await new Upstream('orders', [h.url(busy), h.url(ok)]).post('/orders', '{}');
  assert.strictEqual(r.status, 503);
  assert.deepStrictEqual(JSON.parse(r.body), { error: 'stored but not queued', id: 7 });
  assert.strictEqual(ok.requests, 0);
  r = await new Upstream('orders', [h.url(busy), h.url(ok)]).get('/orders/1');
  assert.strictEqual(r.status, 200, 'a GET moves on after any 503');
  assert.strictEqual(ok.requests, 1);

  const crashUrl = `http://127.0.0.1:${crash.address().port}`;
  await assert.rejects(new Upstream('orders', [crashUrl, h.url(ok)]).post('/orders', '{}'),
    (err) => !err.notSent && !err.unreachable);
  assert.strictEqual(crash.connections, 1);
  assert.strictEqual(ok.requests, 1, 'the POST was not sent again');
  r = await new Upstream('orders', [crashUrl, h.url(ok)]).get('/orders/1');
  assert.strictEqual(r.status, 200, 'a GET moves on after a broken connection');
});

test('a response timeout is not retried; every instance down is "unreachable"', async (t) => {
  const slow = await h.instance((req, body, res) => setTimeout(() => h.json(res, 200, {}), 800));
  const ok = await h.instance((req, body, res) => h.json(res, 200, {}));
  t.after(() => Promise.all([h.close(slow), h.close(ok)]));
  await assert.rejects(new Upstream('catalog', [h.url(slow), h.url(ok)], { timeoutMs: 200 }).get('/products'),
    (err) => err.code === 'ERESPONSETIMEOUT');
  assert.strictEqual(ok.requests, 0);
  await assert.rejects(new Upstream('catalog', [await h.closedUrl(), await h.closedUrl()]).get('/products'),
    (err) => err.unreachable && /^catalog unreachable \(2 instance\(s\)\)/.test(err.message));
});
