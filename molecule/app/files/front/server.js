// Smallest Node.js HTTP service for the node_app scenario: GET /health answers 200 "ok",
// GET / answers the greeting built by the bundled node_modules/greet module.
const http = require('http');
const greet = require('greet');

http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain'});
  res.end(req.url === '/health' ? 'ok\n' : greet(process.env.GREETING || 'hello') + '\n');
}).listen(Number(process.env.PORT || 3000), '0.0.0.0');
