package main

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/x/bsonx/bsoncore"
)

func document(t *testing.T, value bson.D) bsoncore.Document {
	t.Helper()
	raw, err := bson.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var countGroup = bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}

func aggregate(pipeline ...bson.D) bson.D {
	return bson.D{
		{Key: "aggregate", Value: "things"},
		{Key: "pipeline", Value: pipeline},
		{Key: "cursor", Value: bson.D{}},
		{Key: "lsid", Value: bson.D{{Key: "id", Value: "session"}}},
		{Key: "$db", Value: "shop"},
	}
}

func TestCountDocumentsShapesBecomeCount(t *testing.T) {
	filter := bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: 3}}}}
	match := bson.D{{Key: "$match", Value: filter}}
	skip := bson.D{{Key: "$skip", Value: 2}}
	limit := bson.D{{Key: "$limit", Value: 5}}
	for name, test := range map[string]struct {
		pipeline []bson.D
		want     bson.D
	}{
		"no filter": {[]bson.D{countGroup}, bson.D{}},
		"filter":    {[]bson.D{match, countGroup}, bson.D{{Key: "query", Value: filter}}},
		"skip and limit": {
			[]bson.D{match, skip, limit, countGroup},
			bson.D{{Key: "query", Value: filter}, {Key: "skip", Value: int64(2)}, {Key: "limit", Value: int64(5)}},
		},
	} {
		count, namespace, ok := countCommand(document(t, aggregate(test.pipeline...)))
		if !ok || namespace != "shop.things" {
			t.Fatalf("%s: not rewritten (%v, %q)", name, ok, namespace)
		}
		want := append(append(bson.D{{Key: "count", Value: "things"}}, test.want...),
			bson.E{Key: "lsid", Value: bson.D{{Key: "id", Value: "session"}}}, bson.E{Key: "$db", Value: "shop"})
		if got, expected := count.String(), document(t, want).String(); got != expected {
			t.Errorf("%s: %s, want %s", name, got, expected)
		}
	}
}

func TestOtherAggregatesPassThrough(t *testing.T) {
	otherGroup := bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$k"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}
	project := bson.D{{Key: "$project", Value: bson.D{{Key: "a", Value: 1}}}}
	withTransaction := append(aggregate(countGroup), bson.E{Key: "txnNumber", Value: int64(1)})
	for name, command := range map[string]bson.D{
		"other group":        aggregate(otherGroup),
		"extra stage":        aggregate(project, countGroup),
		"group not last":     aggregate(countGroup, project),
		"limit before skip":  aggregate(bson.D{{Key: "$limit", Value: 5}}, bson.D{{Key: "$skip", Value: 2}}, countGroup),
		"transaction":        withTransaction,
		"database aggregate": {{Key: "aggregate", Value: 1}, {Key: "pipeline", Value: []bson.D{countGroup}}, {Key: "$db", Value: "shop"}},
		"find":               {{Key: "find", Value: "things"}, {Key: "$db", Value: "shop"}},
	} {
		if _, _, ok := countCommand(document(t, command)); ok {
			t.Errorf("%s: rewritten", name)
		}
	}
}

func TestCountReplyIsACursor(t *testing.T) {
	for n, want := range map[int32]string{
		0: `{"cursor": {"firstBatch": [],"id": {"$numberLong":"0"},"ns": "shop.things"},"ok": {"$numberDouble":"1.0"}}`,
		7: `{"cursor": {"firstBatch": [{"_id": {"$numberInt":"1"},"n": {"$numberLong":"7"}}],"id": {"$numberLong":"0"},"ns": "shop.things"},"ok": {"$numberDouble":"1.0"}}`,
	} {
		reply := opMsg(9, 4, document(t, bson.D{{Key: "n", Value: n}, {Key: "ok", Value: 1.0}}))
		_, responseTo, body, ok := opMsgBody(countReply(reply, "shop.things"))
		if !ok || responseTo != 4 || body.String() != want {
			t.Errorf("n=%d: %v %d %s", n, ok, responseTo, body)
		}
	}
	failure := opMsg(9, 4, document(t, bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: "no"}, {Key: "code", Value: 2}}))
	if got := countReply(failure, "shop.things"); string(got) != string(failure) {
		t.Errorf("an error reply was changed: %v", got)
	}
}
