"""axbench external target: Python asyncio servers on the Protocol API.

Serves one scenario (docs/protocols.md) on 127.0.0.1:PORT until SIGTERM:
  tcp_echo        every byte back, as it arrives
  http_plaintext  "Hello, World!" to every pipelined GET, one write per read
  rpc_fanout      per request of AXB_PARAM_SIZE bytes, AXB_PARAM_FANOUT
                  concurrent calls (one asyncio task each) to the backend at
                  AXB_BACKEND, then the request echoed

  python3 server.py --port 9000 --scenario tcp_echo [--loop asyncio|uvloop]

The same file serves the uvloop target (--loop uvloop).
"""
import argparse
import asyncio
import os
import signal
import struct
import sys
from email.utils import formatdate

CALL = struct.Struct("<QQ")  # backend call and answer: {id, value}


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Http(asyncio.Protocol):
    """HTTP/1.1 plaintext: answers every complete request of a read in one
    write; a request that is not GET gets 400 and the connection closes."""

    BODY = b"Hello, World!"
    date = formatdate(usegmt=True).encode()

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            request, self.buf = self.buf[:end], self.buf[end + 4:]
            if not request.startswith(b"GET "):
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\n"
                                     b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                self.transport.close()
                return
            out.append(b"HTTP/1.1 200 OK\r\nServer: asyncio\r\nDate: " + Http.date +
                       b"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" +
                       Http.BODY)
        if out:
            self.transport.write(b"".join(out))


async def refresh_date():
    while True:
        Http.date = formatdate(usegmt=True).encode()
        await asyncio.sleep(1)


class Backend(asyncio.Protocol):
    """One connection to the backend: a call in flight at a time."""

    def __init__(self):
        self.buf = b""
        self.waiter = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        if len(self.buf) >= CALL.size and self.waiter:
            answer, self.buf = self.buf[:CALL.size], self.buf[CALL.size:]
            self.waiter.set_result(CALL.unpack(answer))
            self.waiter = None

    def connection_lost(self, exc):
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("backend closed"))

    async def call(self, call_id, value):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(CALL.pack(call_id, value))
        got_id, got = await self.waiter
        if got_id != call_id or got != 2 * value + 1:
            raise ValueError("wrong backend answer")


class Front(asyncio.Protocol):
    """rpc_fanout's front: requests queue up; one task per connection takes
    them in turn, spawns the fan-out calls as tasks and joins them."""

    def __init__(self, size, fanout, backend):
        self.size, self.fanout, self.backend = size, fanout, backend
        self.buf = b""
        self.queue = asyncio.Queue()

    def connection_made(self, transport):
        self.transport = transport
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def data_received(self, data):
        self.buf += data
        while len(self.buf) >= self.size:
            self.queue.put_nowait(self.buf[:self.size])
            self.buf = self.buf[self.size:]

    def connection_lost(self, exc):
        self.task.cancel()

    async def serve(self):
        loop = asyncio.get_running_loop()
        host, port = self.backend.rsplit(":", 1)
        conns = []
        try:
            for _ in range(self.fanout):
                _, conn = await loop.create_connection(Backend, host, int(port))
                conns.append(conn)
            call_id = 0
            while True:
                request = await self.queue.get()
                calls = []
                for i, conn in enumerate(conns):
                    call_id += 1
                    calls.append(asyncio.create_task(conn.call(call_id, i * 7 + call_id)))
                await asyncio.gather(*calls)
                self.transport.write(request)
        except (ConnectionError, ValueError) as e:
            print(f"rpc_fanout: {e}", file=sys.stderr)
            self.transport.close()
        finally:
            for conn in conns:
                conn.transport.close()


async def main(args):
    loop = asyncio.get_running_loop()
    if args.scenario == "tcp_echo":
        factory = Echo
    elif args.scenario == "http_plaintext":
        factory = Http
        loop.create_task(refresh_date())
    elif args.scenario == "rpc_fanout":
        size = int(os.environ["AXB_PARAM_SIZE"])
        fanout = int(os.environ["AXB_PARAM_FANOUT"])
        backend = os.environ["AXB_BACKEND"]
        factory = lambda: Front(size, fanout, backend)  # noqa: E731
    else:
        sys.exit(f"scenario {args.scenario} is not served here")
    server = await loop.create_server(factory, "127.0.0.1", args.port, backlog=4096)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = p.parse_args()
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main(args))
