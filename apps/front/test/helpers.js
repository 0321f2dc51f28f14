'use strict';
// Real servers on the loopback interface for the front's tests.
const http = require('node:http');
const net = require('node:net');
const { spawn, spawnSync } = require('node:child_process');

// An HTTP instance; handler(req, body, res) answers. Counts requests and keeps POST bodies.
function instance(handler, port = 0) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        srv.requests += 1;
        if (req.method === 'POST') srv.bodies.push(body);
        handler(req, body, res);
      });
    });
    srv.requests = 0;
    srv.bodies = [];
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

const url = (srv) => `http://127.0.0.1:${srv.address().port}`;

function json(res, status, obj, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(obj));
}

function close(srv) {
  return new Promise((resolve) => {
    srv.close(() => resolve());
    if (srv.closeAllConnections) srv.closeAllConnections();
  });
}

// A URL whose port refuses connections.
async function closedUrl() {
  const srv = await instance(() => {});
  const u = url(srv);
  await close(srv);
  return u;
}

// Accepts connections, reads the request head, then destroys the socket without answering
// (a crash after the request arrived). Counts connections.
function hangup() {
  return new Promise((resolve) => {
    const srv = net.createServer((sock) => {
      srv.connections += 1;
      let head = '';
      sock.on('data', (c) => {
        head += c;
        if (head.includes('\r\n\r\n')) sock.destroy();
      });
      sock.on('error', () => {});
    });
    srv.connections = 0;
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

// A listening socket whose accept queue is full (connects to it time out), made with python3
// because Node always accepts. Resolves to {url, stop} or null when python3 is missing.
function blackhole() {
  if (spawnSync('python3', ['-c', 'pass']).status !== 0) return Promise.resolve(null);
  const code = `
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(16):
    c = socket.socket(); c.settimeout(0.3)
    try:
        c.connect(("127.0.0.1", port)); fill.append(c)
    except OSError:
        break
print(port, flush=True)
sys.stdin.read()
`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdout.once('data', (d) => resolve({
      url: `http://127.0.0.1:${String(d).trim()}`,
      stop: () => child.stdin.end(),
    }));
    child.once('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { instance, url, json, close, closedUrl, hangup, blackhole, sleep };
