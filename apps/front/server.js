'use strict';
// Web front of the reference stack. Node 18+ (uses the built-in fetch).
//   GET  /                      HTML page listing the products (from catalog), with an order form
//   GET  /health                {"status":"ok"} (the front itself; ?deep=1 also checks the services)
//   GET  /api/products          -> catalog  GET /products
//   POST /api/orders            -> orders   POST /orders (JSON body forwarded, status passed through)
//   GET  /api/orders/:id        -> orders   GET /orders/:id
//   GET  /api/invoices/:orderId -> billing  GET /invoices/:orderId
// Env: PORT (3000), CATALOG_URL, ORDERS_URL, BILLING_URL, UPSTREAM_TIMEOUT_MS (5000).

const path = require('path');
const express = require('express');

const trim = (u) => u.replace(/\/+$/, '');
const config = {
  port: parseInt(process.env.PORT || '3000', 10),
  catalog: trim(process.env.CATALOG_URL || 'http://localhost:8081'),
  orders: trim(process.env.ORDERS_URL || 'http://localhost:8082'),
  billing: trim(process.env.BILLING_URL || 'http://localhost:8083'),
  timeoutMs: parseInt(process.env.UPSTREAM_TIMEOUT_MS || '5000', 10),
};

function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

// Calls a service; resolves to {status, body(text), type} or throws on network error/timeout.
async function upstream(base, p, options = {}) {
  const res = await fetch(base + p, {
    ...options,
    headers: { accept: 'application/json', ...(options.headers || {}) },
    signal: AbortSignal.timeout(config.timeoutMs),
  });
  return {
    status: res.status,
    body: await res.text(),
    type: res.headers.get('content-type') || 'application/json',
  };
}

// Express 4 does not catch rejected promises: wrap async handlers.
const wrap = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);

// Proxies to a service and passes its status and body through; 502 when it cannot be reached.
function proxy(name, base, pathOf, method = 'GET') {
  return wrap(async (req, res) => {
    const options = { method };
    if (method === 'POST') {
      options.body = JSON.stringify(req.body === undefined ? {} : req.body);
      options.headers = { 'content-type': 'application/json' };
    }
    let r;
    try {
      r = await upstream(base, pathOf(req), options);
    } catch (err) {
      log(`${name} unreachable: ${err.name}: ${err.message}`);
      res.status(502).json({ error: `${name} unreachable` });
      return;
    }
    res.status(r.status).type(r.type).send(r.body);
  });
}

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const money = (cents) => (Number(cents) / 100).toFixed(2);

function page(products, error) {
  const rows = products
    .map(
      (p) => `      <tr><td>${escapeHtml(p.id)}</td><td>${escapeHtml(p.name)}</td><td class="num">${money(p.price_cents)}</td>
        <td><input type="number" min="1" max="1000" value="1" aria-label="quantity" id="qty-${escapeHtml(p.id)}">
        <button data-product="${escapeHtml(p.id)}">Order</button></td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Shop - toolkit reference stack</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="/static/style.css">
</head>
<body>
  <h1>Shop</h1>
  ${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
  <table id="products">
    <thead><tr><th>#</th><th>Product</th><th class="num">Price</th><th></th></tr></thead>
    <tbody>
${rows}
    </tbody>
  </table>
  <h2>Last order</h2>
  <pre id="result">none yet</pre>
  <script src="/static/app.js"></script>
</body>
</html>
`;
}

function createApp() {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '100kb' }));
  app.use('/static', express.static(path.join(__dirname, 'public'), { maxAge: '1h' }));

  app.get('/health', wrap(async (req, res) => {
    if (!req.query.deep) {
      res.json({ status: 'ok' });
      return;
    }
    const services = { catalog: config.catalog, orders: config.orders, billing: config.billing };
    const checks = {};
    await Promise.all(
      Object.entries(services).map(async ([name, base]) => {
        try {
          checks[name] = (await upstream(base, '/health')).status === 200 ? 'ok' : 'error';
        } catch (err) {
          checks[name] = 'unreachable';
        }
      }),
    );
    const ok = Object.values(checks).every((v) => v === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'error', checks });
  }));

  app.get('/', wrap(async (req, res) => {
    let products = [];
    let error = null;
    try {
      const r = await upstream(config.catalog, '/products');
      if (r.status === 200) {
        products = JSON.parse(r.body);
      } else {
        error = `The catalog answered ${r.status}.`;
      }
    } catch (err) {
      error = 'The catalog is unreachable.';
      log(`catalog unreachable: ${err.name}: ${err.message}`);
    }
    res.status(error ? 502 : 200).type('html').send(page(products, error));
  }));

  app.get('/api/products', proxy('catalog', config.catalog, () => '/products'));
  app.post('/api/orders', proxy('orders', config.orders, () => '/orders', 'POST'));
  app.get('/api/orders/:id', proxy('orders', config.orders, (req) => `/orders/${encodeURIComponent(req.params.id)}`));
  app.get('/api/invoices/:orderId', proxy('billing', config.billing,
    (req) => `/invoices/${encodeURIComponent(req.params.orderId)}`));

  app.use('/api', (req, res) => res.status(404).json({ error: 'not found' }));

  // Errors (e.g. malformed JSON body) as JSON, never a stack trace.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const status = err.status || err.statusCode || 500;
    if (status >= 500) {
      log(`error on ${req.method} ${req.path}: ${err.stack || err}`);
    }
    res.status(status).json({ error: status === 400 ? 'invalid JSON body' : status >= 500 ? 'internal error' : err.message });
  });
  return app;
}

module.exports = { createApp, config };

if (require.main === module) {
  const server = createApp().listen(config.port, () => {
    log(`front listening on port ${config.port}; catalog=${config.catalog} orders=${config.orders} billing=${config.billing}`);
  });
  const stop = (sig) => {
    log(`${sig}: shutting down`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
