import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.AbstractMongoBackend;
import de.bwaldvogel.mongo.backend.AbstractSynchronizedMongoCollection;
import de.bwaldvogel.mongo.backend.AbstractSynchronizedMongoDatabase;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.DocumentWithPosition;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.memory.index.MemoryUniqueIndex;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;

/**
 * The local stack's MongoDB-wire-protocol server: mongo-java-server with documents kept as BSON in an H2 MVStore
 * file.
 *
 * <p>Usage: {@code FreightlineMongo <host> <port> <store file> [commit interval ms]}. Each collection is one
 * MVStore map from an insertion sequence number to the document's BSON (inserts append; the store caches what it
 * reads and keeps the rest on disk), with mongo-java-server's in-memory unique indexes over it, rebuilt on start.
 * (mongo-java-server's own H2 backend stores Java-serialized documents under their ids and manages only a few
 * thousand writes per second.) Every write command (insert, update, delete, findAndModify, and the commands that
 * create, drop or rename collections, databases and indexes) commits the store before it is acknowledged, so an
 * acknowledged write survives a crash of this server (it is in the file; the operating system writes it to disk).
 * The store also commits every interval and on SIGTERM. It reports MongoDB 4.4 (wire version 9), the oldest server
 * current drivers accept.
 */
public final class FreightlineMongo {

    /** MongoDB 4.4: wire version 9. */
    enum Version implements MongoVersion {
        MONGO_4_4;

        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    }

    private static final String DOCUMENTS = "documents/";

    /** Commands that change data: committed to the store before the reply (command names in lower case). */
    private static final Set<String> WRITE_COMMANDS = Set.of("insert", "update", "delete", "findandmodify",
            "create", "drop", "dropdatabase", "createindexes", "dropindexes", "renamecollection");

    private FreightlineMongo() {
    }

    static byte[] encode(Document document) {
        ByteBuf buffer = Unpooled.buffer(512);
        try {
            BsonEncoder.encodeDocument(document, buffer);
            byte[] bytes = new byte[buffer.readableBytes()];
            buffer.readBytes(bytes);
            return bytes;
        } finally {
            buffer.release();
        }
    }

    static Document decode(byte[] bytes) {
        return BsonDecoder.decodeBson(Unpooled.wrappedBuffer(bytes));
    }

    /** Databases and collections over one MVStore. */
    static final class StoredBackend extends AbstractMongoBackend {

        private final MVStore store;
        /** Data size (BSON bytes) per collection namespace. */
        private final MVMap<String, Long> sizes;

        StoredBackend(MVStore store) {
            this.store = store;
            this.sizes = store.openMap("sizes");
            for (String name : store.getMapNames()) {
                if (name.startsWith(DOCUMENTS)) {
                    String namespace = name.substring(DOCUMENTS.length());
                    resolveDatabase(namespace.substring(0, namespace.indexOf('.')));
                }
            }
        }

        /** Runs the command, and commits the store after a write command, before the reply is sent (also when
         * the command failed part way: what it did write is kept, as the reply reports). */
        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            boolean write = WRITE_COMMANDS.contains(command.toLowerCase(Locale.ROOT));
            try {
                return super.handleCommand(channel, databaseName, command, query);
            } finally {
                if (write) {
                    store.commit();
                }
            }
        }

        @Override
        protected MongoDatabase openOrCreateDatabase(String databaseName) {
            return new StoredDatabase(databaseName);
        }

        /** Inner classes: the outer instance (the store) is set before the superclass constructors run, which
         * already open the database's collections. */
        final class StoredDatabase extends AbstractSynchronizedMongoDatabase<Integer> {

            StoredDatabase(String databaseName) {
                super(databaseName, getCursorRegistry());
                initializeNamespacesAndIndexes();
            }

            @Override
            protected MongoCollection<Integer> openOrCreateCollection(String name, CollectionOptions options) {
                return new StoredCollection(this, name, options);
            }

            @Override
            protected Index<Integer> openOrCreateUniqueIndex(String collectionName, String indexName,
                    List<IndexKey> keys, boolean sparse) {
                return new MemoryUniqueIndex(indexName, keys, sparse);
            }

            @Override
            protected long getStorageSize() {
                return store.getFileStore() == null ? 0 : store.getFileStore().size();
            }

            @Override
            protected long getFileSize() {
                return getStorageSize();
            }
        }

        final class StoredCollection extends AbstractSynchronizedMongoCollection<Integer> {

            private final MVMap<Integer, byte[]> documents;
            private String namespace;
            private final AtomicInteger next;

            StoredCollection(MongoDatabase database, String collectionName, CollectionOptions options) {
                super(database, collectionName, options, getCursorRegistry());
                this.namespace = database.getDatabaseName() + "." + collectionName;
                this.documents = store.openMap(DOCUMENTS + namespace);
                Integer last = documents.lastKey();
                this.next = new AtomicInteger(last == null ? 0 : last + 1);
            }

            @Override
            protected void updateDataSize(int sizeDelta) {
                sizes.put(namespace, sizes.getOrDefault(namespace, 0L) + sizeDelta);
            }

            @Override
            protected int getDataSize() {
                return (int) Math.min(Integer.MAX_VALUE, sizes.getOrDefault(namespace, 0L));
            }

            @Override
            protected Integer addDocumentInternal(Document document) {
                Integer position = next.getAndIncrement();
                documents.put(position, encode(document));
                return position;
            }

            @Override
            public synchronized int count() {
                return (int) documents.sizeAsLong();
            }

            @Override
            protected Document getDocument(Integer position) {
                byte[] bytes = documents.get(position);
                return bytes == null ? null : decode(bytes);
            }

            @Override
            protected void removeDocument(Integer position) {
                documents.remove(position);
            }

            @Override
            protected void handleUpdate(Integer position, Document oldDocument, Document newDocument) {
                documents.put(position, encode(newDocument));
            }

            @Override
            protected Stream<DocumentWithPosition<Integer>> streamAllDocumentsWithPosition() {
                return documents.entrySet().stream()
                        .map(entry -> new DocumentWithPosition<>(decode(entry.getValue()), entry.getKey()));
            }

            @Override
            protected QueryResult matchDocuments(Document query, Document orderBy, int numberToSkip, int limit,
                    int batchSize, Document fieldSelector) {
                Stream<Document> all;
                if (isNaturalDescending(orderBy)) {
                    List<Integer> positions = new ArrayList<>(documents.keySet());
                    Collections.reverse(positions);
                    all = positions.stream().map(this::getDocument).filter(document -> document != null);
                } else {
                    all = documents.values().stream().map(FreightlineMongo::decode);
                }
                return matchDocumentsFromStream(all, query, orderBy, numberToSkip, limit, batchSize, fieldSelector);
            }

            @Override
            public void drop() {
                super.drop();
                store.removeMap(documents);
                sizes.remove(namespace);
            }

            @Override
            public synchronized void renameTo(MongoDatabase newDatabase, String newCollectionName) {
                super.renameTo(newDatabase, newCollectionName);
                String target = newDatabase.getDatabaseName() + "." + newCollectionName;
                if (store.hasMap(DOCUMENTS + target)) {
                    store.removeMap(store.openMap(DOCUMENTS + target));
                }
                store.renameMap(documents, DOCUMENTS + target);
                sizes.put(target, sizes.getOrDefault(namespace, 0L));
                sizes.remove(namespace);
                namespace = target;
            }
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 3) {
            System.err.println("usage: FreightlineMongo <host> <port> <store file> [commit interval ms]");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        String file = args[2];
        int commitMs = args.length > 3 ? Integer.parseInt(args[3]) : 200;

        MVStore store = new MVStore.Builder().fileName(file).cacheSize(32).autoCommitBufferSize(16 * 1024).open();
        store.setAutoCommitDelay(commitMs);
        StoredBackend backend = new StoredBackend(store);
        backend.version(Version.MONGO_4_4);
        MongoServer server = new MongoServer(backend);
        server.bind(host, port);
        System.out.println("mongo-java-server listening on " + host + ":" + port + " (store " + file + ")");

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdown();
            store.close();
            System.out.println("mongo-java-server stopped");
            stopped.countDown();
        }));
        stopped.await();
    }
}
