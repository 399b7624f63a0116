package main

// A MongoDB wire protocol proxy in front of FerretDB that answers count_documents with FerretDB's `count` command.
//
// Drivers implement count_documents(filter) as an `aggregate` with the pipeline
// [{$match: filter}, {$skip: s}, {$limit: l}, {$group: {_id: 1, n: {$sum: 1}}}] ($match, $skip, $limit optional).
// FerretDB v1 evaluates that $group by holding every matching document in memory, while its `count` command
// streams the matching documents through a counter. The proxy forwards every message unchanged, except an OP_MSG
// `aggregate` of exactly that shape, which it sends to FerretDB as a `count` (same request id, $db and session
// fields) and whose reply it turns into the cursor document the driver expects. Errors of the `count` pass through
// unchanged; OP_COMPRESSED and any other message pass through untouched.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/x/mongo/driver/wiremessage"
)

// maxMessageSize bounds one wire message: MongoDB's maxMessageSizeBytes (48,000,000) plus headroom.
const maxMessageSize = 48_000_000 + 64*1024

// countPassFields are the aggregate fields copied into the `count` command (those FerretDB's count accepts).
// An aggregate with any other field (a transaction's txnNumber, explain, let, ...) is not rewritten.
var countPassFields = map[string]bool{
	"lsid": true, "$clusterTime": true, "$readPreference": true, "readConcern": true, "maxTimeMS": true,
	"hint": true, "comment": true, "collation": true, "apiVersion": true, "apiStrict": true,
	"apiDeprecationErrors": true,
}

// countProxy serves clients, each over its own connection to FerretDB (dial).
type countProxy struct {
	dial   func() (net.Conn, error)
	logger *slog.Logger
}

// serve accepts clients on listener until it is closed.
func (p *countProxy) serve(listener net.Listener) error {
	for {
		client, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go p.handle(client)
	}
}

// handle relays one client's messages to FerretDB and FerretDB's replies back, until either side closes.
func (p *countProxy) handle(client net.Conn) {
	defer client.Close()
	server, err := p.dial()
	if err != nil {
		p.logger.Error("cannot reach FerretDB", slog.String("error", err.Error()))
		return
	}
	defer server.Close()

	var rewritten sync.Map // request id of each rewritten aggregate -> its namespace "db.collection"
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.relayReplies(server, client, &rewritten)
		client.Close()
	}()
	p.relayRequests(client, server, &rewritten)
	server.Close()
	<-done
}

func (p *countProxy) relayRequests(client, server net.Conn, rewritten *sync.Map) {
	for {
		message, err := readMessage(client)
		if err != nil {
			return
		}
		if count, namespace, ok := countRequest(message); ok {
			requestID := int32(binary.LittleEndian.Uint32(message[4:8]))
			rewritten.Store(requestID, namespace)
			p.logger.Debug("count_documents answered by count", slog.String("ns", namespace))
			message = count
		}
		if _, err := server.Write(message); err != nil {
			return
		}
	}
}

func (p *countProxy) relayReplies(server, client net.Conn, rewritten *sync.Map) {
	for {
		message, err := readMessage(server)
		if err != nil {
			return
		}
		responseTo := int32(binary.LittleEndian.Uint32(message[8:12]))
		if namespace, ok := rewritten.LoadAndDelete(responseTo); ok {
			message = countReply(message, namespace.(string))
		}
		if _, err := client.Write(message); err != nil {
			return
		}
	}
}

// readMessage reads one whole wire message (header included).
func readMessage(r io.Reader) ([]byte, error) {
	var length [4]byte
	if _, err := io.ReadFull(r, length[:]); err != nil {
		return nil, err
	}
	size := int32(binary.LittleEndian.Uint32(length[:]))
	if size < 16 || size > maxMessageSize {
		return nil, fmt.Errorf("wire message of %d bytes", size)
	}
	message := make([]byte, size)
	copy(message, length[:])
	if _, err := io.ReadFull(r, message[4:]); err != nil {
		return nil, err
	}
	return message, nil
}

// opMsgBody returns the single body document of an OP_MSG without flags (no checksum, no moreToCome) and without
// document sequences; ok is false for anything else.
func opMsgBody(message []byte) (requestID, responseTo int32, body bsoncore.Document, ok bool) {
	_, requestID, responseTo, opcode, rem, ok := wiremessage.ReadHeader(message)
	if !ok || opcode != wiremessage.OpMsg {
		return 0, 0, nil, false
	}
	flags, rem, ok := wiremessage.ReadMsgFlags(rem)
	if !ok || flags != 0 {
		return 0, 0, nil, false
	}
	kind, rem, ok := wiremessage.ReadMsgSectionType(rem)
	if !ok || kind != wiremessage.SingleDocument {
		return 0, 0, nil, false
	}
	body, rem, ok = wiremessage.ReadMsgSectionSingleDocument(rem)
	if !ok || len(rem) != 0 || body.Validate() != nil {
		return 0, 0, nil, false
	}
	return requestID, responseTo, body, true
}

// opMsg builds an OP_MSG carrying body.
func opMsg(requestID, responseTo int32, body bsoncore.Document) []byte {
	start, message := wiremessage.AppendHeaderStart(nil, requestID, responseTo, wiremessage.OpMsg)
	message = wiremessage.AppendMsgFlags(message, 0)
	message = wiremessage.AppendMsgSectionType(message, wiremessage.SingleDocument)
	message = append(message, body...)
	return bsoncore.UpdateLength(message, start, int32(len(message[start:])))
}

// countRequest returns the `count` message standing for a count_documents aggregate, with the aggregate's
// namespace; ok is false for any other message.
func countRequest(message []byte) (count []byte, namespace string, ok bool) {
	requestID, responseTo, body, ok := opMsgBody(message)
	if !ok {
		return nil, "", false
	}
	command, namespace, ok := countCommand(body)
	if !ok {
		return nil, "", false
	}
	return opMsg(requestID, responseTo, command), namespace, true
}

// countCommand returns the `count` command equivalent to an aggregate command of count_documents' shape, with
// the aggregate's namespace; ok is false for any other command.
func countCommand(aggregate bsoncore.Document) (count bsoncore.Document, namespace string, ok bool) {
	elements, err := aggregate.Elements()
	if err != nil || len(elements) == 0 || elements[0].Key() != "aggregate" {
		return nil, "", false
	}
	collection, ok := elements[0].Value().StringValueOK()
	if !ok {
		return nil, "", false // `aggregate: 1` runs on the database, not on a collection
	}
	var database string
	var pipeline bsoncore.Array
	var passed []bsoncore.Element
	for _, element := range elements[1:] {
		switch key, value := element.Key(), element.Value(); {
		case key == "pipeline":
			if pipeline, ok = value.ArrayOK(); !ok {
				return nil, "", false
			}
		case key == "cursor":
			if _, ok = value.DocumentOK(); !ok {
				return nil, "", false
			}
		case key == "$db":
			if database, ok = value.StringValueOK(); !ok {
				return nil, "", false
			}
		case countPassFields[key]:
			passed = append(passed, element)
		default:
			return nil, "", false
		}
	}
	if pipeline == nil || database == "" {
		return nil, "", false
	}
	filter, skip, limit, ok := countPipeline(pipeline)
	if !ok {
		return nil, "", false
	}
	fields := [][]byte{bsoncore.AppendStringElement(nil, "count", collection)}
	if filter != nil {
		fields = append(fields, bsoncore.AppendDocumentElement(nil, "query", filter))
	}
	if skip > 0 {
		fields = append(fields, bsoncore.AppendInt64Element(nil, "skip", skip))
	}
	if limit > 0 {
		fields = append(fields, bsoncore.AppendInt64Element(nil, "limit", limit))
	}
	for _, element := range passed {
		fields = append(fields, element)
	}
	fields = append(fields, bsoncore.AppendStringElement(nil, "$db", database))
	return bsoncore.BuildDocumentFromElements(nil, fields...), database + "." + collection, true
}

// countPipeline matches [{$match: filter}?, {$skip: s}?, {$limit: l}?, {$group: {_id: 1, n: {$sum: 1}}}] and
// returns its filter (nil without $match), skip and limit (0 when absent).
func countPipeline(pipeline bsoncore.Array) (filter bsoncore.Document, skip, limit int64, ok bool) {
	values, err := pipeline.Values()
	if err != nil || len(values) == 0 {
		return nil, 0, 0, false
	}
	stages := make([]bsoncore.Element, len(values))
	for i, value := range values {
		stage, isDocument := value.DocumentOK()
		if !isDocument {
			return nil, 0, 0, false
		}
		elements, err := stage.Elements()
		if err != nil || len(elements) != 1 {
			return nil, 0, 0, false
		}
		stages[i] = elements[0]
	}
	if stages[0].Key() == "$match" {
		if filter, ok = stages[0].Value().DocumentOK(); !ok {
			return nil, 0, 0, false
		}
		stages = stages[1:]
	}
	if len(stages) > 0 && stages[0].Key() == "$skip" {
		if skip, ok = stages[0].Value().AsInt64OK(); !ok || skip < 0 {
			return nil, 0, 0, false
		}
		stages = stages[1:]
	}
	if len(stages) > 0 && stages[0].Key() == "$limit" {
		if limit, ok = stages[0].Value().AsInt64OK(); !ok || limit <= 0 {
			return nil, 0, 0, false
		}
		stages = stages[1:]
	}
	if len(stages) != 1 || stages[0].Key() != "$group" || !isCountGroup(stages[0].Value()) {
		return nil, 0, 0, false
	}
	return filter, skip, limit, true
}

// isCountGroup tells whether a $group specification is exactly {_id: 1, n: {$sum: 1}}.
func isCountGroup(group bsoncore.Value) bool {
	spec, ok := group.DocumentOK()
	if !ok {
		return false
	}
	elements, err := spec.Elements()
	if err != nil || len(elements) != 2 || elements[0].Key() != "_id" || !isOne(elements[0].Value()) ||
		elements[1].Key() != "n" {
		return false
	}
	sum, ok := elements[1].Value().DocumentOK()
	if !ok {
		return false
	}
	accumulators, err := sum.Elements()
	return err == nil && len(accumulators) == 1 && accumulators[0].Key() == "$sum" && isOne(accumulators[0].Value())
}

func isOne(value bsoncore.Value) bool {
	n, ok := number(value)
	return ok && n == 1
}

// number is a BSON int32, int64 or double as a float64.
func number(value bsoncore.Value) (float64, bool) {
	switch value.Type {
	case bsontype.Int32:
		return float64(value.Int32()), true
	case bsontype.Int64:
		return float64(value.Int64()), true
	case bsontype.Double:
		return value.Double(), true
	default:
		return 0, false
	}
}

// countReply turns FerretDB's reply to a rewritten `count` ({n, ok: 1}) into the aggregate's cursor reply
// {cursor: {firstBatch: [{_id: 1, n}] (empty when n is 0), id: 0, ns}, ok: 1}; any other reply is returned as is.
func countReply(message []byte, namespace string) []byte {
	requestID, responseTo, body, ok := opMsgBody(message)
	if !ok {
		return message
	}
	okValue, err := body.LookupErr("ok")
	if err != nil {
		return message
	}
	if succeeded, isNumber := number(okValue); !isNumber || succeeded != 1 {
		return message // an error: passed through
	}
	nValue, err := body.LookupErr("n")
	if err != nil {
		return message
	}
	n, ok := nValue.AsInt64OK()
	if !ok {
		return message
	}
	batch := bsoncore.NewArrayBuilder()
	if n > 0 {
		batch.AppendDocument(bsoncore.NewDocumentBuilder().AppendInt32("_id", 1).AppendInt64("n", n).Build())
	}
	cursor := bsoncore.NewDocumentBuilder().
		AppendArray("firstBatch", batch.Build()).
		AppendInt64("id", 0).
		AppendString("ns", namespace).
		Build()
	reply := bsoncore.NewDocumentBuilder().AppendDocument("cursor", cursor).AppendDouble("ok", 1).Build()
	return opMsg(requestID, responseTo, reply)
}
