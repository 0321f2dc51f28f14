'use strict';
// Web front of the reference stack. Node 18+.
//   GET  /                      HTML page listing the products (from catalog), with an order form
//   GET  /live                  liveness: 200 while the process serves HTTP
//   GET  /health                readiness: {"status":"ok"} (the front itself; 503 "draining" once stopping;
//                               ?deep=1 also checks the services' /health, one healthy instance each is enough)
//   GET  /api/products          -> catalog  GET /products
//   POST /api/orders            -> orders   POST /orders (JSON body forwarded, status passed through)
//   GET  /api/orders/:id        -> orders   GET /orders/:id
//   GET  /api/invoices/:orderId -> billing  GET /invoices/:orderId
// Env: PORT (3000), SERVICE_NAME (front), CATALOG_URLS / ORDERS_URLS / BILLING_URLS (every instance,
// comma-separated; the single CATALOG_URL / ORDERS_URL / BILLING_URL are deprecated fallbacks),
// UPSTREAM_CONNECT_TIMEOUT_MS (1000), UPSTREAM_TIMEOUT_MS (5000), UPSTREAM_DOWN_MS (2000),
// SHUTDOWN_DRAIN_SECONDS (5). See apps/README.md.

const net = require('net');
const path = require('path');
const express = require('express');
const { Upstream, ConfigError, urlsFromEnv, STATE_HEADER } = require('./upstream');

const SERVICES = { catalog: 'http://localhost:8081', orders: 'http://localhost:8082', billing: 'http://localhost:8083' };
// How long in-flight requests may take once the listener is closed, before the process exits anyway.
const FINISH_MS = 8000;

function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

function intFrom(env, name, def, min) {
  const raw = env[name];
  if (raw === undefined || String(raw).trim() === '') return def;
  const v = Number(String(raw).trim());
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`${name} must be an integer >= ${min}, got '${raw}'`);
  return v;
}

// BIND_ADDRESS: one address or a comma-separated list (IPv6 literals may be bracketed); unset or empty:
// every interface (an empty list).
function bindAddressesFrom(env) {
  const raw = (env.BIND_ADDRESS || '').trim();
  if (raw === '') return [];
  return raw.split(',').map((part) => {
    let address = part.trim();
    if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
    if (address === '') throw new ConfigError(`BIND_ADDRESS: empty address in '${raw}'`);
    if (!net.isIP(address) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(address)) {
      throw new ConfigError(`BIND_ADDRESS: '${address}' is not an IP address or a host name`);
    }
    return address;
  });
}

// Reads the configuration from `env`; throws ConfigError naming the variable on a bad value.
function loadConfig(env = process.env) {
  const cfg = {
    port: intFrom(env, 'PORT', 3000, 0),
    bindAddresses: bindAddressesFrom(env),
    serviceName: (env.SERVICE_NAME || '').trim() || 'front',
    connectTimeoutMs: intFrom(env, 'UPSTREAM_CONNECT_TIMEOUT_MS', 1000, 1),
    timeoutMs: intFrom(env, 'UPSTREAM_TIMEOUT_MS', 5000, 1),
    downMs: intFrom(env, 'UPSTREAM_DOWN_MS', 2000, 0),
    drainSeconds: intFrom(env, 'SHUTDOWN_DRAIN_SECONDS', 5, 0),
    services: {},
  };
  for (const [name, def] of Object.entries(SERVICES)) cfg.services[name] = urlsFromEnv(env, name, def);
  return cfg;
}

// One line without secrets (the front has none), e.g. for the start-up log.
function describeWiring(cfg) {
  const calls = Object.entries(cfg.services)
    .map(([name, s]) => `${name} [${s.urls.join(', ')}] from ${s.source}`)
    .join('; ');
  return `front (SERVICE_NAME=${cfg.serviceName}) port=${cfg.port} drain=${cfg.drainSeconds}s; calls: ${calls}; `
    + `timeouts: connect ${cfg.connectTimeoutMs} ms, response ${cfg.timeoutMs} ms`;
}

// Express 4 does not catch rejected promises: wrap async handlers.
const wrap = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);

// Proxies to a service and passes its status and body through; 502 when it cannot be reached.
function proxy(up, pathOf, method = 'GET') {
  return wrap(async (req, res) => {
    const body = method === 'POST' ? JSON.stringify(req.body === undefined ? {} : req.body) : undefined;
    let r;
    try {
      r = await up.request(method, pathOf(req), body);
    } catch (err) {
      log(`${up.name} unreachable: ${err.code || err.name}: ${err.message}`);
      res.status(502).json({ error: `${up.name} unreachable` });
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

// cfg: from loadConfig(). Returns the express app; app.locals.state is 'ready' or 'draining'.
function createApp(cfg = loadConfig()) {
  const up = {};
  for (const [name, s] of Object.entries(cfg.services)) {
    up[name] = new Upstream(name, s.urls, {
      source: s.source, connectTimeoutMs: cfg.connectTimeoutMs, timeoutMs: cfg.timeoutMs, downMs: cfg.downMs, log,
    });
  }
  const app = express();
  app.locals.state = 'ready';
  app.locals.upstreams = up;
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    if (app.locals.state !== 'ready') {
      // Going away: no keep-alive, and say so (clients that know the header move to other instances).
      res.set('Connection', 'close');
      res.set(STATE_HEADER, app.locals.state);
    }
    next();
  });
  app.get('/live', (req, res) => res.json({ status: 'alive' }));
  app.use(express.json({ limit: '100kb' }));
  app.use('/static', express.static(path.join(__dirname, 'public'), { maxAge: '1h' }));

  app.get('/health', wrap(async (req, res) => {
    if (app.locals.state !== 'ready') {
      res.status(503).json({ status: app.locals.state });
      return;
    }
    if (!req.query.deep) {
      res.json({ status: 'ok' });
      return;
    }
    // A service is ok when at least one of its instances is healthy.
    const checks = {};
    const instances = {};
    await Promise.all(
      Object.values(up).map(async (u) => {
        instances[u.name] = {};
        await Promise.all(u.urls.map(async (base) => {
          try {
            const r = await u.send(base + '/health', 'GET', undefined, {
              connectTimeoutMs: cfg.connectTimeoutMs, timeoutMs: cfg.timeoutMs,
            });
            instances[u.name][base] = r.status === 200 ? 'ok' : r.instanceState || 'error';
          } catch (err) {
            instances[u.name][base] = 'unreachable';
          }
        }));
        const states = Object.values(instances[u.name]);
        checks[u.name] = states.includes('ok') ? 'ok' : states.every((v) => v === 'unreachable') ? 'unreachable' : 'error';
      }),
    );
    const ok = Object.values(checks).every((v) => v === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'error', checks, instances });
  }));

  app.get('/', wrap(async (req, res) => {
    let products = [];
    let error = null;
    try {
      const r = await up.catalog.get('/products');
      if (r.status === 200) {
        products = JSON.parse(r.body);
      } else {
        error = `The catalog answered ${r.status}.`;
      }
    } catch (err) {
      error = 'The catalog is unreachable.';
      log(`catalog unreachable: ${err.code || err.name}: ${err.message}`);
    }
    res.status(error ? 502 : 200).type('html').send(page(products, error));
  }));

  app.get('/api/products', proxy(up.catalog, () => '/products'));
  app.post('/api/orders', proxy(up.orders, () => '/orders', 'POST'));
  app.get('/api/orders/:id', proxy(up.orders, (req) => `/orders/${encodeURIComponent(req.params.id)}`));
  app.get('/api/invoices/:orderId', proxy(up.billing, (req) => `/invoices/${encodeURIComponent(req.params.orderId)}`));

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

// Graceful stop (SIGTERM, SIGINT): /health turns 503 "draining" at once and every response closes
// its connection; requests are served for cfg.drainSeconds; then the listener closes, idle
// connections close, in-flight requests finish (up to FINISH_MS) and the process exits 0.
function installShutdown(app, server, cfg, exit = process.exit) {
  let stopping = false;
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    const t0 = Date.now();
    app.locals.state = 'draining';
    log(`${sig}: stop requested; /health now 'draining', serving requests for ${cfg.drainSeconds} s`);
    setTimeout(() => {
      log('closing the HTTP listener');
      server.close(() => {
        log(`${cfg.serviceName} stopped after ${Date.now() - t0} ms`);
        exit(0);
      });
      if (server.closeIdleConnections) server.closeIdleConnections();
      setTimeout(() => {
        log(`requests still running after ${FINISH_MS} ms: closing them`);
        if (server.closeAllConnections) server.closeAllConnections();
        exit(0);
      }, FINISH_MS).unref();
    }, cfg.drainSeconds * 1000);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return stop;
}

// Opens cfg.port on every cfg.bindAddresses entry (every interface without one). Returns one object with the
// http.Server methods installShutdown uses, acting on every listener. `ready(port, where)` runs once all listen.
function listen(app, cfg, ready = () => {}) {
  const addresses = cfg.bindAddresses.length ? cfg.bindAddresses : [undefined];
  const servers = [];
  let port = cfg.port;
  const next = (i) => {
    if (i === addresses.length) {
      ready(port, cfg.bindAddresses.length ? cfg.bindAddresses.join(', ') : 'every interface');
      return;
    }
    const server = app.listen(port, addresses[i], () => {
      port = server.address().port; // port 0: the first listener's port for all of them
      next(i + 1);
    });
    servers.push(server);
  };
  next(0);
  return {
    servers,
    close(done) {
      let open = servers.length;
      for (const server of servers) server.close(() => { open -= 1; if (open === 0) done(); });
    },
    closeIdleConnections() { for (const server of servers) if (server.closeIdleConnections) server.closeIdleConnections(); },
    closeAllConnections() { for (const server of servers) if (server.closeAllConnections) server.closeAllConnections(); },
  };
}

module.exports = { createApp, loadConfig, describeWiring, installShutdown, listen };

if (require.main === module) {
  let cfg;
  try {
    cfg = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`front: bad configuration: ${err.message}`);
    process.exit(2);
  }
  log(`wiring: ${describeWiring(cfg)}`);
  const app = createApp(cfg);
  const server = listen(app, cfg, (port, where) => log(`front listening on port ${port} (${where})`));
  installShutdown(app, server, cfg);
}
