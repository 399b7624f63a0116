// Command freightline-ferretdb runs FerretDB's embeddable server over a PostgreSQL database: the local
// stack's MongoDB-wire-protocol server. It stops cleanly on SIGTERM or SIGINT.
//
// Usage: freightline-ferretdb -listen 127.0.0.1:17017 -postgresql-url postgres://user@127.0.0.1:15432/ferretdb
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
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

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
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

	logger.Info("serving", slog.String("uri", server.MongoDBURI()))

	if err := server.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "freightline-ferretdb: %s\n", err)
		os.Exit(1)
	}
}
