// go-net: axbench's network scenarios on Go's net package, one goroutine per
// connection with blocking reads and writes (the runtime's netpoller makes
// them asynchronous). Wire protocols: docs/protocols.md.
//
//	axt-go-net --port P --scenario tcp_echo|http_plaintext|rpc_fanout
//	           [--host 127.0.0.1] [--size N] [--backend HOST:PORT --fanout K]
//
// tcp_echo writes back every byte it reads. http_plaintext parses HTTP/1.1
// keep-alive with pipelining by hand on the raw stream, the same work as the
// ax servers do. rpc_fanout reads `size` bytes, makes `fanout` calls to the
// backend, each in its own goroutine on its own connection, waits for all
// (sync.WaitGroup), then echoes the request.
//
// An empty option value means "not given" so that one command line, with
// axbench's placeholders, serves every scenario.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func usage(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "axt-go-net: "+format+"\n", a...)
	fmt.Fprintln(os.Stderr, "usage: axt-go-net --port P --scenario tcp_echo|http_plaintext|rpc_fanout "+
		"[--host H] [--size N] [--backend HOST:PORT --fanout K]")
	os.Exit(2)
}

// intOpt parses an integer option in [lo, hi]; empty gives def.
func intOpt(name, s string, def, lo, hi int) int {
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		usage("--%s '%s': expected an integer in [%d, %d]", name, s, lo, hi)
	}
	return v
}

// --- tcp_echo ---------------------------------------------------------------

func echoConn(c net.Conn, bufsize int) {
	defer c.Close()
	buf := make([]byte, bufsize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// --- http_plaintext -----------------------------------------------------------

const httpMax = 16384

var (
	crlf2      = []byte("\r\n\r\n")
	badRequest = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	response   atomic.Pointer[[]byte] // the whole 200 response, rebuilt each second for its Date
)

func makeResponse(now time.Time) {
	r := []byte("HTTP/1.1 200 OK\r\nServer: go-net\r\nDate: " + now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") +
		"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	response.Store(&r)
}

// requestLen returns the length of the request at the start of p: 0 when it
// is incomplete, -1 when it is malformed.
func requestLen(p []byte) int {
	end := bytes.Index(p, crlf2)
	if end < 0 {
		if len(p) >= httpMax {
			return -1
		}
		return 0
	}
	if !bytes.HasPrefix(p, []byte("GET ")) && !bytes.HasPrefix(p, []byte("POST ")) &&
		!bytes.HasPrefix(p, []byte("HEAD ")) {
		return -1
	}
	body := 0
	head := p[:end+2]
	for i := bytes.IndexByte(head, '\n'); i >= 0 && i+1 < len(head); {
		line := head[i+1:]
		next := bytes.IndexByte(line, '\n')
		if next < 0 {
			break
		}
		line = line[:next]
		if len(line) > 15 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
			v, err := strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			if err != nil || v < 0 {
				return -1
			}
			body = v
		}
		i += 1 + next
	}
	if end+4+body > len(p) {
		return 0
	}
	return end + 4 + body
}

func httpConn(c net.Conn) {
	defer c.Close()
	in := make([]byte, httpMax)
	out := make([]byte, 0, 2*httpMax)
	have := 0
	for {
		n, err := c.Read(in[have:])
		have += n
		// every request of this read answered in one write
		used, l := 0, 0
		resp := *response.Load()
		out = out[:0]
		for {
			if l = requestLen(in[used:have]); l <= 0 {
				break
			}
			out = append(out, resp...)
			used += l
		}
		if l < 0 {
			out = append(out, badRequest...)
		}
		if len(out) > 0 {
			if _, werr := c.Write(out); werr != nil {
				return
			}
		}
		if err != nil || l < 0 {
			return
		}
		have = copy(in, in[used:have])
	}
}

// --- rpc_fanout ---------------------------------------------------------------

// call makes one backend call {id, value} on c and checks the reply
// {id, 2 * value + 1} (16 bytes each way, little endian).
func call(c net.Conn, id, value uint64) error {
	var m [16]byte
	binary.LittleEndian.PutUint64(m[0:], id)
	binary.LittleEndian.PutUint64(m[8:], value)
	if _, err := c.Write(m[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, m[:]); err != nil {
		return err
	}
	gotID, got := binary.LittleEndian.Uint64(m[0:]), binary.LittleEndian.Uint64(m[8:])
	if gotID != id || got != 2*value+1 {
		return fmt.Errorf("backend reply {%d, %d} to call {%d, %d}", gotID, got, id, value)
	}
	return nil
}

func fanoutConn(c net.Conn, backend string, fanout, size int) {
	defer c.Close()
	back := make([]net.Conn, 0, fanout)
	defer func() {
		for _, b := range back {
			b.Close()
		}
	}()
	for i := 0; i < fanout; i++ {
		b, err := net.Dial("tcp", backend)
		if err != nil {
			fmt.Fprintf(os.Stderr, "axt-go-net: backend: %v\n", err)
			return
		}
		back = append(back, b)
	}
	req := make([]byte, size)
	errs := make([]error, fanout)
	var id uint64
	var wg sync.WaitGroup
	for {
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		wg.Add(fanout)
		for i, b := range back {
			id++
			go func(i int, b net.Conn, id uint64) {
				defer wg.Done()
				errs[i] = call(b, id, uint64(i)*7+id)
			}(i, b, id)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				fmt.Fprintf(os.Stderr, "axt-go-net: %v\n", err)
				return
			}
		}
		if _, err := c.Write(req); err != nil {
			return
		}
	}
}

// --- main -----------------------------------------------------------------------

func main() {
	port := flag.String("port", "", "port to listen on")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	scenario := flag.String("scenario", "", "tcp_echo, http_plaintext or rpc_fanout")
	sizeS := flag.String("size", "", "message size in bytes (tcp_echo: read buffer; rpc_fanout: request)")
	backend := flag.String("backend", "", "HOST:PORT of the rpc_fanout backend")
	fanoutS := flag.String("fanout", "", "backend calls per request")
	flag.Usage = func() { usage("bad option") }
	flag.Parse()
	if flag.NArg() > 0 {
		usage("unexpected argument '%s'", flag.Arg(0))
	}
	if *port == "" {
		usage("--port is required")
	}
	p := intOpt("port", *port, 0, 0, 65535)
	size := intOpt("size", *sizeS, 64, 1, 1<<20)
	fanout := intOpt("fanout", *fanoutS, 4, 1, 1024)

	var serve func(net.Conn)
	switch *scenario {
	case "tcp_echo":
		bufsize := size
		if bufsize < 4096 {
			bufsize = 4096
		} else if bufsize > 65536 {
			bufsize = 65536
		}
		serve = func(c net.Conn) { echoConn(c, bufsize) }
	case "http_plaintext":
		makeResponse(time.Now())
		go func() { // refresh Date just after each second begins
			for {
				next := time.Now().Truncate(time.Second).Add(time.Second)
				time.Sleep(time.Until(next))
				makeResponse(time.Now())
			}
		}()
		serve = httpConn
	case "rpc_fanout":
		if *backend == "" {
			usage("rpc_fanout needs --backend HOST:PORT")
		}
		serve = func(c net.Conn) { fanoutConn(c, *backend, fanout, size) }
	default:
		usage("scenario '%s' is not served (tcp_echo, http_plaintext, rpc_fanout)", *scenario)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(p)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "axt-go-net: %v\n", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "axt-go-net: accept: %v\n", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		go serve(c)
	}
}
