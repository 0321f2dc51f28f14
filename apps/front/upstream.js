'use strict';
// Client of the services (catalog, orders, billing), each running as one or more instances.
//
// A call starts at a rotating instance (load spreads) and moves on to the next one when an instance
// certainly did not process the request: the connection was refused or timed out while connecting
// (or the name did not resolve), or the instance answered 503 with `X-Instance-State: starting` or
// `draining`. A GET also moves on after any other 503 and after a connection that broke before the
// response (not after a response timeout: a slow instance is not retried elsewhere). A POST is never
// repeated once it may have reached a working instance; to tell the cases apart, each POST uses a
// connection of its own (a pooled keep-alive connection may be closed by the server while the
// request is on its way). An instance that failed, or answered that it is draining, is tried last
// for `downMs`. A single URL (e.g. a Kubernetes Service) is tried twice.

const http = require('node:http');
const https = require('node:https');

const STATE_HEADER = 'x-instance-state';
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

class ConfigError extends Error {}

// Parses "http://h1:8081,http://h2:8081": items trimmed, empty items dropped, trailing slashes
// removed. Throws ConfigError naming `varName` for an item that is not http(s)://host[:port].
function parseUrlList(value, varName) {
  const out = [];
  for (const raw of String(value || '').split(',')) {
    const item = raw.trim();
    if (!item) continue;
    let u;
    try {
      u = new URL(item);
    } catch (err) {
      throw new ConfigError(`${varName}: not a URL: '${item}'`);
    }
    if (!['http:', 'https:'].includes(u.protocol) || !u.hostname || u.username || u.password
        || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
      const shown = u.username || u.password ? `${u.protocol}//***@${u.host}` : item;
      throw new ConfigError(`${varName}: each item must be http://host:port or https://host:port, got '${shown}'`);
    }
    out.push(item.replace(/\/+$/, ''));
  }
  return out;
}

// Base URLs of every instance of `app`: <APP>_URLS, else the deprecated <APP>_URL, else `def`.
// Returns {urls, source}.
function urlsFromEnv(env, app, def) {
  const many = `${app.toUpperCase().replace(/-/g, '_')}_URLS`;
  const one = many.slice(0, -1);
  let urls = parseUrlList(env[many], many);
  if (urls.length) return { urls, source: many };
  urls = parseUrlList(env[one], one);
  if (urls.length) return { urls, source: `${one} (deprecated)` };
  return { urls: parseUrlList(def, `default of ${many}`), source: 'default' };
}

// One request to one URL. Resolves to {status, body, type, instanceState}; rejects with an Error
// whose `notSent` is true when the connection was never established (the request cannot have
// been processed).
function attempt(url, method, body, { connectTimeoutMs, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const payload = body === undefined || body === null ? null : Buffer.from(body);
    const headers = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const idempotent = method === 'GET' || method === 'HEAD';
    // agent false: a connection of its own, closed after the response (see the file comment).
    const req = mod.request(u, { method, headers, agent: idempotent ? agents[u.protocol] : false });
    let connected = false;
    let settled = false;
    let connectTimer = null;
    const finish = () => {
      settled = true;
      clearTimeout(overallTimer);
      clearTimeout(connectTimer);
    };
    const fail = (err, notSent) => {
      if (settled) return;
      finish();
      err.notSent = notSent;
      err.url = url;
      req.destroy();
      reject(err);
    };
    const overallTimer = setTimeout(() => {
      const err = new Error(`no response within ${timeoutMs} ms`);
      err.code = 'ERESPONSETIMEOUT';
      fail(err, !connected);
    }, timeoutMs);
    req.on('socket', (socket) => {
      if (!socket.connecting) {
        connected = true; // a kept-alive connection
        return;
      }
      connectTimer = setTimeout(() => {
        const err = new Error(`connect timeout after ${connectTimeoutMs} ms`);
        err.code = 'ECONNECTTIMEOUT';
        fail(err, true);
      }, connectTimeoutMs);
      socket.once('connect', () => {
        connected = true;
        clearTimeout(connectTimer);
      });
    });
    req.on('error', (err) => fail(err, !connected));
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (err) => fail(err, false));
      res.on('aborted', () => fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' }), false));
      res.on('end', () => {
        if (settled) return;
        finish();
        resolve({
          status: res.statusCode,
          body: Buffer.concat(chunks).toString('utf8'),
          type: res.headers['content-type'] || 'application/json',
          instanceState: res.headers[STATE_HEADER] || null,
        });
      });
    });
    req.end(payload || undefined);
  });
}

class Upstream {
  // name: the called app; urls: base URLs of its instances; options: connectTimeoutMs (1000),
  // timeoutMs (5000, per attempt), downMs (2000), log (function), send (one attempt; for tests).
  constructor(name, urls, options = {}) {
    if (!urls.length) throw new ConfigError(`no URL for ${name}`);
    this.name = name;
    this.urls = urls.slice();
    this.source = options.source || null;
    this.connectTimeoutMs = options.connectTimeoutMs || 1000;
    this.timeoutMs = options.timeoutMs || 5000;
    this.downMs = options.downMs === undefined ? 2000 : options.downMs;
    this.log = options.log || (() => {});
    this.send = options.send || attempt;
    this.next = 0;
    this.downUntil = this.urls.map(() => 0);
  }

  describe() {
    return `${this.name} [${this.urls.join(', ')}]${this.source ? ` from ${this.source}` : ''}`;
  }

  // Instance indexes in the order the next call tries them (advances the rotation).
  order(now = Date.now()) {
    const n = this.urls.length;
    const start = this.next % n;
    this.next = (this.next + 1) % 1e9;
    const rotated = Array.from({ length: n }, (_, i) => (start + i) % n);
    const out = [...rotated.filter((i) => this.downUntil[i] <= now), ...rotated.filter((i) => this.downUntil[i] > now)];
    while (out.length < 2) out.push(out[out.length - 1]);
    return out;
  }

  markDown(i, why) {
    const now = Date.now();
    if (this.downUntil[i] <= now) {
      this.log(`${this.name} instance ${this.urls[i]} unavailable (${why}); trying the other instances first for ${this.downMs} ms`);
    }
    this.downUntil[i] = now + this.downMs;
  }

  // Sends `method path` to one instance after the other until one takes it. Resolves to the first
  // response that is not a refusal (or, when every instance refused with 503, the last of those).
  // Rejects with err.unreachable = true when no instance could be reached, or with the error of
  // an attempt that may have been processed (POST) or timed out waiting for the response.
  async request(method, path, body) {
    const idempotent = method === 'GET' || method === 'HEAD';
    let last503 = null;
    let lastError = null;
    for (const i of this.order()) {
      let r;
      try {
        r = await this.send(this.urls[i] + path, method, body, {
          connectTimeoutMs: this.connectTimeoutMs,
          timeoutMs: this.timeoutMs,
        });
      } catch (err) {
        if (err.notSent || (idempotent && err.code !== 'ERESPONSETIMEOUT')) {
          this.markDown(i, `${err.code || err.name}: ${err.message}`);
          lastError = err;
          continue;
        }
        throw err;
      }
      if (r.status === 503 && (r.instanceState === 'starting' || r.instanceState === 'draining')) {
        this.markDown(i, r.instanceState);
        last503 = r;
        continue;
      }
      if (r.status === 503 && idempotent) {
        last503 = r;
        continue;
      }
      if (r.instanceState === 'draining') this.markDown(i, 'draining');
      else this.downUntil[i] = 0;
      return r;
    }
    if (last503) return last503;
    const err = new Error(`${this.name} unreachable (${this.urls.length} instance(s)): ${lastError ? lastError.message : 'no attempt'}`);
    err.unreachable = true;
    err.cause = lastError;
    throw err;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body);
  }
}

module.exports = { Upstream, ConfigError, parseUrlList, urlsFromEnv, attempt, STATE_HEADER };
