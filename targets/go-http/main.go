// go-http: axbench's http_plaintext on Go's net/http server, the way a Go
// application serves HTTP (keep-alive and pipelined requests handled by the
// package, one goroutine per connection). Wire protocol: docs/protocols.md.
//
//	axt-go-http --port P --scenario http_plaintext [--host 127.0.0.1]
//
// The raw-socket scenarios (tcp_echo, rpc_fanout) are go-net's.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

var body = []byte("Hello, World!")

func usage(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "axt-go-http: "+format+"\n", a...)
	fmt.Fprintln(os.Stderr, "usage: axt-go-http --port P --scenario http_plaintext [--host H]")
	os.Exit(2)
}

func plaintext(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Server"] = []string{"go-http"}
	h["Content-Type"] = []string{"text/plain"}
	// an explicit length: no chunked encoding (Date is added by the server)
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.Write(body)
}

func main() {
	port := flag.String("port", "", "port to listen on")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	scenario := flag.String("scenario", "", "http_plaintext")
	flag.Usage = func() { usage("bad option") }
	flag.Parse()
	if flag.NArg() > 0 {
		usage("unexpected argument '%s'", flag.Arg(0))
	}
	p, err := strconv.Atoi(*port)
	if err != nil || p < 0 || p > 65535 {
		usage("--port '%s': expected a port number", *port)
	}
	if *scenario != "http_plaintext" {
		usage("scenario '%s' is not served (http_plaintext)", *scenario)
	}
	// every path answers, as the TechEmpower test's servers do
	srv := &http.Server{
		Addr:    net.JoinHostPort(*host, strconv.Itoa(p)),
		Handler: http.HandlerFunc(plaintext),
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintf(os.Stderr, "axt-go-http: %v\n", err)
		os.Exit(1)
	}
}
