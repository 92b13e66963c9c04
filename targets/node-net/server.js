'use strict';
// node-net: axbench's network scenarios on Node's `net` module, one event
// loop, no framework. Wire protocols: docs/protocols.md.
//
//   node server.js --port P --scenario tcp_echo|http_plaintext|rpc_fanout
//                  [--host 127.0.0.1] [--backend HOST:PORT --fanout K --size N]
//
// tcp_echo        every byte read is written back (pipe: back-pressure included)
// http_plaintext  HTTP/1.1 keep-alive with pipelining parsed by hand on the
//                 raw stream, the same work as the ax servers do
// rpc_fanout      read `size` bytes, make `fanout` concurrent calls to the
//                 backend (one promise per call, on its own connection,
//                 joined with Promise.all), then echo the request
const net = require('net');

function usage(msg) {
  process.stderr.write(`node-net: ${msg}\n` +
    'usage: node server.js --port P --scenario tcp_echo|http_plaintext|rpc_fanout ' +
    '[--host H] [--backend HOST:PORT --fanout K --size N]\n');
  process.exit(2);
}

// An empty option value means "not given", so that one command line with
// axbench's placeholders serves every scenario.
function parseArgs(argv) {
  const opt = { host: '127.0.0.1', port: '', scenario: '', backend: '', fanout: '', size: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(key in opt)) usage(`unknown option '${argv[i]}'`);
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
    opt[key] = argv[i + 1];
  }
  const int = (name, def, lo, hi) => {
    if (opt[name] === '') return def;
    const v = Number(opt[name]);
    if (!/^\d+$/.test(opt[name]) || v < lo || v > hi) usage(`--${name} '${opt[name]}': expected an integer in [${lo}, ${hi}]`);
    return v;
  };
  if (opt.port === '') usage('--port is required');
  opt.port = int('port', 0, 0, 65535);
  opt.fanout = int('fanout', 4, 1, 1024);
  opt.size = int('size', 64, 1, 1 << 20);
  if (opt.scenario === 'rpc_fanout') {
    const m = /^(.+):(\d+)$/.exec(opt.backend);
    if (!m) usage('rpc_fanout needs --backend HOST:PORT');
    opt.backend = { host: m[1], port: Number(m[2]) };
  }
  return opt;
}

// --- tcp_echo -------------------------------------------------------------

function echoConn(sock) {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  sock.pipe(sock);
}

// --- http_plaintext ---------------------------------------------------------

const HTTP_MAX = 16384;
const BAD = Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
const CRLF2 = Buffer.from('\r\n\r\n');
let dateSec = -1;
let response = null;

// The response changes only with its Date header: rebuild it once a second.
function httpResponse() {
  const now = Math.floor(Date.now() / 1000);
  if (now !== dateSec) {
    dateSec = now;
    response = Buffer.from('HTTP/1.1 200 OK\r\nServer: node-net\r\n' +
      `Date: ${new Date(now * 1000).toUTCString()}\r\n` +
      'Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!');
  }
  return response;
}

// Length of the request at the start of buf: 0 when incomplete, -1 when
// malformed (not GET/POST/HEAD, or a header block that never ends).
function requestLength(buf) {
  const end = buf.indexOf(CRLF2);
  if (end < 0) return buf.length >= HTTP_MAX ? -1 : 0;
  const head = buf.toString('latin1', 0, end);
  if (!/^(GET|POST|HEAD) /.test(head)) return -1;
  const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  const total = end + 4 + (m ? Number(m[1]) : 0);
  return total <= buf.length ? total : 0;
}

function httpConn(sock) {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  let pending = null; // bytes of an incomplete request
  sock.on('data', (chunk) => {
    let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let n = 0;
    let len;
    while ((len = requestLength(buf)) > 0) {
      buf = buf.subarray(len);
      n++;
    }
    // every request of this read answered in one write
    if (n === 1) sock.write(httpResponse());
    else if (n > 1) {
      const one = httpResponse();
      const out = Buffer.allocUnsafe(one.length * n);
      for (let i = 0; i < n; i++) one.copy(out, i * one.length);
      sock.write(out);
    }
    if (len < 0) {
      sock.end(BAD);
      return;
    }
    pending = buf.length ? Buffer.from(buf) : null;
  });
}

// --- rpc_fanout ---------------------------------------------------------------

// One backend connection: a call writes {id u64, value u64} (little endian)
// and resolves with the reply once its 16 bytes came back. Ids and values
// are plain numbers: they stay far below 2^53 (2^52 calls would take years).
const readU64 = (b, off) => b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;
const writeU64 = (b, off, v) => {
  b.writeUInt32LE(v % 0x100000000, off);
  b.writeUInt32LE(Math.floor(v / 0x100000000), off + 4);
};

class Backend {
  constructor(sock) {
    this.sock = sock;
    this.rx = Buffer.alloc(0);
    this.waiter = null;
    sock.setNoDelay(true);
    sock.on('data', (chunk) => {
      this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
      if (this.rx.length >= 16 && this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        const id = readU64(this.rx, 0), value = readU64(this.rx, 8);
        this.rx = this.rx.subarray(16);
        w.resolve({ id, value });
      }
    });
    const fail = (err) => {
      if (this.waiter) this.waiter.reject(err || new Error('backend closed'));
      this.waiter = null;
    };
    sock.on('error', fail);
    sock.on('close', () => fail());
  }

  static connect(addr) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(addr.port, addr.host);
      sock.once('connect', () => { sock.removeListener('error', reject); resolve(new Backend(sock)); });
      sock.once('error', reject);
    });
  }

  async call(id, value) {
    const msg = Buffer.allocUnsafe(16);
    writeU64(msg, 0, id);
    writeU64(msg, 8, value);
    const reply = await new Promise((resolve, reject) => {
      if (this.sock.destroyed) return reject(new Error('backend closed'));
      this.waiter = { resolve, reject };
      this.sock.write(msg);
    });
    if (reply.id !== id || reply.value !== 2 * value + 1)
      throw new Error(`backend reply {${reply.id}, ${reply.value}} to call {${id}, ${value}}`);
  }
}

async function fanoutConn(sock, opt) {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy()); // 'close' follows
  sock.pause();
  const settled = await Promise.allSettled(
    Array.from({ length: opt.fanout }, () => Backend.connect(opt.backend)));
  const backends = settled.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed || sock.destroyed) {
    if (failed) process.stderr.write(`node-net: backend ${opt.backend.host}:${opt.backend.port}: ${failed.reason.message}\n`);
    sock.destroy();
    for (const b of backends) b.sock.destroy();
    return;
  }
  const closeAll = () => { sock.destroy(); for (const b of backends) b.sock.destroy(); };
  sock.on('close', closeAll);
  let rx = Buffer.alloc(0);
  let nextId = 0;
  let busy = false;
  // one request at a time per connection (the scenario's pipeline is 1)
  const serve = async () => {
    busy = true;
    while (rx.length >= opt.size) {
      const req = rx.subarray(0, opt.size);
      rx = rx.subarray(opt.size);
      try {
        await Promise.all(backends.map((b, i) => {
          const id = ++nextId;
          return b.call(id, i * 7 + id);
        }));
      } catch (err) {
        if (!sock.destroyed) process.stderr.write(`node-net: ${err.message}\n`);
        closeAll();
        return;
      }
      sock.write(req);
    }
    busy = false;
  };
  sock.on('data', (chunk) => {
    rx = rx.length ? Buffer.concat([rx, chunk]) : chunk;
    if (!busy) serve();
  });
  sock.resume();
}

// --- main ---------------------------------------------------------------------

const opt = parseArgs(process.argv.slice(2));
const handlers = {
  tcp_echo: echoConn,
  http_plaintext: httpConn,
  rpc_fanout: (sock) => fanoutConn(sock, opt),
};
const handler = handlers[opt.scenario];
if (!handler) usage(`scenario '${opt.scenario}' is not served (tcp_echo, http_plaintext, rpc_fanout)`);
const server = net.createServer({ noDelay: true }, handler);
server.on('error', (err) => {
  process.stderr.write(`node-net: ${err.message}\n`);
  process.exit(1);
});
server.listen({ port: opt.port, host: opt.host, backlog: 4096 });
