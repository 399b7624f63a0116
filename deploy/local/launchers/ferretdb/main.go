// Command freightline-ferretdb runs FerretDB's embeddable server over a PostgreSQL database: the local
// stack's MongoDB-wire-protocol server. FerretDB listens on a Unix socket of its own; the public address is served
// by a small wire proxy (countproxy.go) that answers count_documents with FerretDB's streaming `count`. It stops
// cleanly on SIGTERM or SIGINT.
//
// Usage: freightline-ferretdb -listen 127.0.0.1:17017 -postgresql-url postgres://user@127.0.0.1:15432/ferretdb
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

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

	// FerretDB's own endpoint: a Unix socket in a private directory, reached only through the proxy.
	socketDir, err := os.MkdirTemp("", "freightline-ferretdb-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: %s\n", err)
		os.Exit(1)
	}
	defer os.RemoveAll(socketDir)
	socket := filepath.Join(socketDir, "ferretdb.sock")

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{Unix: socket},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: *postgresqlURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: %s\n", err)
		os.RemoveAll(socketDir)
		os.Exit(1)
	}

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: -listen: %s\n", err)
		os.RemoveAll(socketDir)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	proxy := &countProxy{dial: func() (net.Conn, error) { return dialWhenListening(ctx, socket) }, logger: logger}
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- proxy.serve(listener) }()

	logger.Info("serving", slog.String("listen", listener.Addr().String()), slog.String("ferretdb", socket))

	runErr := server.Run(ctx)
	listener.Close()
	if err := <-proxyDone; err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: %s\n", runErr)
		os.RemoveAll(socketDir)
		os.Exit(1)
	}
}

// dialWhenListening connects to FerretDB's socket, waiting while FerretDB starts (up to a minute).
func dialWhenListening(ctx context.Context, socket string) (net.Conn, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := (&net.Dialer{}).DialContext(ctx, "unix", socket)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return conn, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
