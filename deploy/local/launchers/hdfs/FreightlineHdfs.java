import java.io.File;
import java.util.concurrent.CountDownLatch;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * The local stack's HDFS: one NameNode and one DataNode in one JVM (Hadoop's MiniDFSCluster), WebHDFS on.
 *
 * <p>Usage: {@code FreightlineHdfs <base dir> <namenode rpc port> <namenode http port> [https]}. The file system
 * is formatted on the first start only, so data persists between runs under the base directory. Both daemons
 * bind 127.0.0.1; the DataNode's ports are ephemeral (WebHDFS clients follow the NameNode's redirects).
 *
 * <p>With {@code https}, both daemons' web servers (WebHDFS included) serve HTTPS only, the NameNode's on the
 * given http port, with the keystore that {@code ssl-server.xml} (a resource on the class path) names; the
 * NameNode then redirects WebHDFS clients to the DataNode's HTTPS port.
 */
public final class FreightlineHdfs {

    private FreightlineHdfs() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3 || (args.length > 3 && !"https".equals(args[3]))) {
            System.err.println("usage: FreightlineHdfs <base dir> <namenode rpc port> <namenode http port> [https]");
            System.exit(2);
        }
        File base = new File(args[0]).getAbsoluteFile();
        int rpcPort = Integer.parseInt(args[1]);
        int httpPort = Integer.parseInt(args[2]);
        boolean https = args.length > 3;
        File marker = new File(base, ".formatted");
        boolean format = !marker.exists();

        Configuration conf = new Configuration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.getPath());
        conf.setBoolean("dfs.webhdfs.enabled", true);
        conf.setBoolean("dfs.permissions.enabled", false);
        conf.setInt("dfs.replication", 1);
        conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
        conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
        conf.set("dfs.datanode.hostname", "127.0.0.1");
        conf.setBoolean("dfs.namenode.datanode.registration.ip-hostname-check", false);
        conf.setLong("dfs.namenode.safemode.extension", 0L);
        // Closing a file waits until the DataNode has reported the last block; the DataNode's WebHDFS writer
        // polls for that from 400 ms on, doubling. Poll from 10 ms on instead (with more attempts, so the
        // total patience stays about 10 s): small files then close in milliseconds, not in 400 ms.
        conf.setLong("dfs.client.block.write.locateFollowingBlock.initial.delay.ms", 10L);
        conf.setInt("dfs.client.block.write.locateFollowingBlock.retries", 10);
        // A file may close while its last block is committed (written, acknowledged and finalized by the
        // DataNode) but not yet reported back to the NameNode: with one DataNode that report is a formality.
        conf.setInt("dfs.namenode.file.close.num-committed-allowed", 1);
        if (https) {
            conf.set("dfs.http.policy", "HTTPS_ONLY");
            conf.set("dfs.namenode.https-address", "127.0.0.1:" + httpPort);
            conf.set("dfs.namenode.https-bind-host", "127.0.0.1");
            conf.set("dfs.datanode.https.address", "127.0.0.1:0");
        }

        MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
                .nameNodePort(rpcPort)
                .nameNodeHttpPort(httpPort)
                .numDataNodes(1)
                .format(format)
                .manageNameDfsDirs(true)
                .manageDataDfsDirs(true)
                .checkExitOnShutdown(false)
                .waitSafeMode(true)
                .build();
        cluster.waitActive();
        if (format && !marker.createNewFile() && !marker.exists()) {
            throw new IllegalStateException("cannot write " + marker);
        }
        System.out.println("HDFS up: hdfs://127.0.0.1:" + rpcPort + " webhdfs " + (https ? "https" : "http")
                + "://127.0.0.1:" + httpPort
                + " (base " + base + (format ? ", formatted" : "") + ")");

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            cluster.shutdown(false);
            System.out.println("HDFS stopped");
            stopped.countDown();
        }));
        stopped.await();
    }
}
