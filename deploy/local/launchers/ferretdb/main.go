// Command freightline-ferretdb runs FerretDB's embeddable server over a PostgreSQL database: the local
// stack's MongoDB-wire-protocol server. FerretDB listens on a free loopback port of its own; the public address
// is served by a small wire proxy (countproxy.go) that answers count_documents with FerretDB's streaming `count`.
// It stops cleanly on SIGTERM or SIGINT.
//
// Usage: freightline-ferretdb -listen 127.0.0.1:17017 -postgresql-url postgres://user@127.0.0.1:15432/ferretdb
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL of the database that holds the documents")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	if *postgresqlURL == "" {
		fmt.Fprintln(os.Stderr, "freightline-ferretdb: -postgresql-url is required")
		os.Exit(2)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: -log-level: %s\n", err)
		os.Exit(2)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// The public address is bound first (a busy port fails at once); clients wait in its backlog while FerretDB starts.
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: -listen: %s\n", err)
		os.Exit(1)
	}

	// FerretDB's own endpoint: a free loopback port, reached through the proxy.
	server, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: *postgresqlURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: %s\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	ran := make(chan error, 1)
	go func() { ran <- server.Run(ctx) }()

	uri := make(chan string, 1)
	go func() { uri <- server.MongoDBURI() }() // returns once FerretDB listens
	var internal string
	select {
	case u := <-uri:
		parsed, err := url.Parse(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "freightline-ferretdb: FerretDB's address %q: %s\n", u, err)
			os.Exit(1)
		}
		internal = parsed.Host
	case err := <-ran:
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: FerretDB stopped before listening: %v\n", err)
		os.Exit(1)
	}

	proxy := &countProxy{dial: func() (net.Conn, error) { return net.Dial("tcp", internal) }, logger: logger}
	served := make(chan error, 1)
	go func() { served <- proxy.serve(listener) }()

	logger.Info("serving", slog.String("listen", listener.Addr().String()), slog.String("ferretdb", internal))

	err = <-ran
	listener.Close()
	if serveErr := <-served; err == nil {
		err = serveErr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: %s\n", err)
		os.Exit(1)
	}
}
