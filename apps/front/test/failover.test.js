'use strict';
// The real front against two fake instances of catalog and of orders that restart one after the
// other the way the Java services do (drain: served with "X-Instance-State: draining" and
// "Connection: close"; stop: 503 "draining"; port closed gracefully; "starting" 503s; ready again),
// while client loops call the front: no request may fail and no order may be processed twice.
// The phases are longer than UPSTREAM_DOWN_MS so that the front meets each of them.
const test = require('node:test');
const assert = require('node:assert');
const { createApp, loadConfig } = require('../server');
const h = require('./helpers');

// A fake service instance on a fixed port that can be restarted.
class Restartable {
  constructor(name) {
    this.name = name;
    this.state = 'ready';
    this.requests = 0;
    this.refused = 0;
    this.orders = [];
    this.server = null;
  }

  handle(req, body, res) {
    this.requests += 1;
    if (this.state === 'starting' || this.state === 'stopped') {
      this.refused += 1;
      const st = this.state === 'starting' ? 'starting' : 'draining';
      h.json(res, 503, { error: `${this.name} is ${st}` }, { 'x-instance-state': st, connection: 'close' });
      return;
    }
    const headers = this.state === 'draining' ? { 'x-instance-state': 'draining', connection: 'close' } : {};
    if (req.method === 'POST' && req.url === '/orders') {
      this.orders.push(JSON.parse(body).uid);
      h.json(res, 201, { id: this.orders.length, from: this.name }, headers);
    } else if (req.url === '/products') {
      h.json(res, 200, [{ id: 1, name: 'Mug', price_cents: 1299 }], headers);
    } else {
      h.json(res, 404, { error: 'not found' }, headers);
    }
  }

  async start(port = 0) {
    this.server = await h.instance((req, body, res) => this.handle(req, body, res), port);
    this.port = this.server.address().port;
  }

  async restart({ drainMs, stoppedMs, downMs, startingMs }) {
    this.state = 'draining';
    await h.sleep(drainMs);
    this.state = 'stopped';
    await h.sleep(stoppedMs);
    // graceful: in-flight requests finish, idle connections close
    await new Promise((resolve) => { this.server.close(resolve); this.server.closeIdleConnections(); });
    await h.sleep(downMs);
    this.state = 'starting';
    await this.start(this.port);
    await h.sleep(startingMs);
    this.state = 'ready';
  }

  url() {
    return `http://127.0.0.1:${this.port}`;
  }
}

test('rolling restart of every upstream instance: zero failed requests, no duplicate order', async (t) => {
  const catalog = [new Restartable('catalog-1'), new Restartable('catalog-2')];
  const orders = [new Restartable('orders-1'), new Restartable('orders-2')];
  for (const i of [...catalog, ...orders]) await i.start();
  const cfg = loadConfig({
    CATALOG_URLS: catalog.map((i) => i.url()).join(','),
    ORDERS_URLS: orders.map((i) => i.url()).join(','),
    BILLING_URLS: await h.closedUrl(),
    UPSTREAM_CONNECT_TIMEOUT_MS: '500',
    UPSTREAM_DOWN_MS: '1000',
  });
  const app = createApp(cfg);
  const reasons = [];
  for (const u of Object.values(app.locals.upstreams)) {
    const markDown = u.markDown.bind(u);
    u.markDown = (i, why) => { reasons.push(`${u.name} ${why}`); markDown(i, why); };
  }
  const front = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  t.after(() => Promise.all([front, ...[...catalog, ...orders].map((i) => i.server)].map(h.close)));
  const base = h.url(front);

  let running = true;
  const results = { ok: 0, failed: [] };
  const placed = [];
  let uid = 0;
  async function loop(n) {
    while (running) {
      const post = n % 2 === 0 ? uid % 2 === 0 : uid % 3 === 0;
      const id = ++uid;
      try {
        const r = post
          ? await fetch(base + '/api/orders', { method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ product_id: 1, quantity: 1, uid: id }) })
          : await fetch(base + (id % 4 === 1 ? '/' : '/api/products'));
        await r.text();
        if (r.status === (post ? 201 : 200)) {
          results.ok += 1;
          if (post) placed.push(id);
        } else {
          results.failed.push(`${post ? 'POST' : 'GET'} -> ${r.status}`);
        }
      } catch (err) {
        results.failed.push(String(err));
      }
    }
  }
  const loops = [0, 1, 2, 3].map(loop);
  // the front learns "draining" at once, retries the instance after 1 s (port closed: refused),
  // after 2 s ("starting"), after 3 s ("starting"), after 4 s (ready)
  const plan = { drainMs: 300, stoppedMs: 300, downMs: 1000, startingMs: 1600 };
  await h.sleep(300);
  await Promise.all([catalog[0].restart(plan), orders[0].restart(plan)]);
  await h.sleep(1200);
  await Promise.all([catalog[1].restart(plan), orders[1].restart(plan)]);
  await h.sleep(1200);
  running = false;
  await Promise.all(loops);

  assert.deepStrictEqual(results.failed, []);
  assert.ok(results.ok > 100, `only ${results.ok} requests`);
  const processed = [...orders[0].orders, ...orders[1].orders];
  assert.strictEqual(processed.length, new Set(processed).size, 'an order was processed twice');
  assert.deepStrictEqual([...processed].sort((a, b) => a - b), [...placed].sort((a, b) => a - b));
  for (const i of [...catalog, ...orders]) {
    assert.ok(i.requests > 10, `${i.name} got ${i.requests} requests`);
    assert.ok(i.refused > 0, `${i.name} was never asked while starting`);
  }
  for (const svc of ['catalog', 'orders']) {
    for (const why of ['draining', 'starting', 'ECONNREFUSED']) {
      assert.ok(reasons.some((r) => r.startsWith(`${svc} ${why}`)), `${svc}: no failover after '${why}'`);
    }
  }
  t.diagnostic(`${results.ok} requests, ${placed.length} orders; `
    + `per instance: ${[...catalog, ...orders].map((i) => `${i.name}=${i.requests}`).join(' ')}`);
});
