'use strict';
// node-http: axbench's http_plaintext on Node's own `http` module, the way a
// Node application serves HTTP (llhttp parser, keep-alive and pipelining
// handled by the module). Wire protocol: docs/protocols.md.
//
//   node server.js --port P --scenario http_plaintext [--host 127.0.0.1]
//
// The raw-socket scenarios (tcp_echo, rpc_fanout) are node-net's.
const http = require('http');

function usage(msg) {
  process.stderr.write(`node-http: ${msg}\n` +
    'usage: node server.js --port P --scenario http_plaintext [--host H]\n');
  process.exit(2);
}

const opt = { host: '127.0.0.1' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!argv[i].startsWith('--') || !['port', 'scenario', 'host'].includes(key)) usage(`unknown option '${argv[i]}'`);
  if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
  opt[key] = argv[i + 1];
}
if (!/^\d+$/.test(opt.port || '') || Number(opt.port) > 65535) usage(`--port '${opt.port}': expected a port number`);
if (opt.scenario !== 'http_plaintext') usage(`scenario '${opt.scenario}' is not served (http_plaintext)`);

const BODY = 'Hello, World!';
const server = http.createServer((req, res) => {
  // an explicit length: no chunked encoding (Date is added by the module)
  res.writeHead(200, { 'Server': 'node-http', 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
});
// The client owns the connection: never close an idle keep-alive one first
// (the module's default is 5 s).
server.keepAliveTimeout = 0;
server.on('connection', (sock) => sock.setNoDelay(true));
server.on('error', (err) => {
  process.stderr.write(`node-http: ${err.message}\n`);
  process.exit(1);
});
server.listen({ port: Number(opt.port), host: opt.host, backlog: 4096 });
