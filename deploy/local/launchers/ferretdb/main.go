// Command freightline-ferretdb runs FerretDB's embeddable server over a PostgreSQL database: the local
// stack's MongoDB-wire-protocol server. FerretDB listens on a free loopback port of its own; the public address
// is served by a small wire proxy (countproxy.go) that answers count_documents with FerretDB's streaming `count`.
// It stops cleanly on SIGTERM or SIGINT.
//
// With -tls-cert and -tls-key the public address serves TLS only (1.2 or later) with that certificate; with
// -socket FerretDB listens on that Unix socket instead of a loopback port (put it in a folder only the server's
// user can enter: then the proxy is the only way in).
//
// Usage: freightline-ferretdb -listen 127.0.0.1:17017 -postgresql-url postgres://user@127.0.0.1:15432/ferretdb
// [-tls-cert server.crt -tls-key server.key] [-socket /path/ferretdb.sock]
package main

import (
	"context"
	"crypto/tls"
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
	tlsCert := flag.String("tls-cert", "", "PEM certificate (chain) of the public address; serves TLS only when set")
	tlsKey := flag.String("tls-key", "", "PEM private key of -tls-cert")
	socket := flag.String("socket", "", "Unix socket FerretDB listens on (default: a free loopback TCP port)")
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
	listener, err := publicListener(*listen, *tlsCert, *tlsKey)
	if err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: %s\n", err)
		os.Exit(1)
	}

	// FerretDB's own endpoint, reached through the proxy: a free loopback port, or the Unix socket.
	internalListener := ferretdb.ListenerConfig{TCP: "127.0.0.1:0"}
	if *socket != "" {
		if err := os.Remove(*socket); err != nil && !os.IsNotExist(err) { // left by a killed run
			fmt.Fprintf(os.Stderr, "freightline-ferretdb: -socket: %s\n", err)
			os.Exit(1)
		}
		internalListener = ferretdb.ListenerConfig{Unix: *socket}
	}
	server, err := ferretdb.New(&ferretdb.Config{
		Listener:      internalListener,
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
	network, internal := "unix", *socket
	select {
	case u := <-uri:
		if *socket == "" {
			parsed, err := url.Parse(u)
			if err != nil {
				fmt.Fprintf(os.Stderr, "freightline-ferretdb: FerretDB's address %q: %s\n", u, err)
				os.Exit(1)
			}
			network, internal = "tcp", parsed.Host
		}
	case err := <-ran:
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: FerretDB stopped before listening: %v\n", err)
		os.Exit(1)
	}

	proxy := &countProxy{dial: func() (net.Conn, error) { return net.Dial(network, internal) }, logger: logger}
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

// publicListener binds the public address: TLS only (1.2 or later) with the certificate and key when both are
// given, plain TCP when neither is.
func publicListener(address, certFile, keyFile string) (net.Listener, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	var config *tls.Config
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		config = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("-listen: %w", err)
	}
	if config != nil {
		return tls.NewListener(listener, config), nil
	}
	return listener, nil
}
