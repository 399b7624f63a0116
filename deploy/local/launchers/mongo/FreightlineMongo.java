import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;

/**
 * The local stack's MongoDB-wire-protocol server: mongo-java-server on an H2 MVStore file.
 *
 * <p>Usage: {@code FreightlineMongo <host> <port> <h2 file> [commit interval ms]}. It reports MongoDB 4.4 (wire
 * version 9), the oldest server current drivers accept, commits the store every interval (so a crash loses at most
 * that much) and closes the store cleanly on SIGTERM.
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

    private FreightlineMongo() {
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 3) {
            System.err.println("usage: FreightlineMongo <host> <port> <h2 file> [commit interval ms]");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        String file = args[2];
        long commitMs = args.length > 3 ? Long.parseLong(args[3]) : 200L;

        H2Backend backend = new H2Backend(file);
        backend.version(Version.MONGO_4_4);
        MongoServer server = new MongoServer(backend);
        server.bind(host, port);
        System.out.println("mongo-java-server listening on " + host + ":" + port + " (store " + file + ")");

        ScheduledExecutorService committer = Executors.newSingleThreadScheduledExecutor();
        committer.scheduleWithFixedDelay(() -> {
            try {
                backend.commit();
            } catch (RuntimeException e) {
                System.err.println("commit failed: " + e);
            }
        }, commitMs, commitMs, TimeUnit.MILLISECONDS);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            committer.shutdown();
            server.shutdown();
            System.out.println("mongo-java-server stopped");
            stopped.countDown();
        }));
        stopped.await();
    }
}
