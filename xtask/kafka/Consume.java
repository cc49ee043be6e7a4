// The consumer of `cargo xtask bench --peer kafka`, run as a single-file
// program: java -cp 'lib/*' Consume.java BOOTSTRAP TOPIC N
//
// Reads the first N records of partition 0 of TOPIC with `assign` and
// `seekToBeginning`: no consumer group, so it runs against a server without
// group membership (ours answers JoinGroup with UNSUPPORTED_VERSION) as well
// as against Kafka. Its consumer settings are ConsumerPerformance's (4.3):
// 2 MiB receive buffer, 1 MiB per partition fetch, byte-array
// deserializers, no CRC check. The clock runs from the first poll to the
// N-th record; it prints one line,
//   CONSUMED records=N bytes=B ms=T rps=R mbps=M cpu_ms=C cores=K
//            poll_cpu_ms=P poll_cores=Q
// with MB = 10^6 bytes of record values, C this JVM's CPU time over the
// same window (all its threads, GC and JIT too; K = C / T) and P that of
// the thread that polls, which with the classic consumer also does the
// fetch I/O and the decoding (Q = P / T: near 1 says this one thread is
// what bounds the rate). It exits 1 when N records have not arrived within
// 30 s of the last one that did.

import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class Consume {
    /** This thread's CPU time in ns, or -1 where the JVM does not say. */
    static long threadNanos() {
        var threads = ManagementFactory.getThreadMXBean();
        return threads.isCurrentThreadCpuTimeSupported() ? threads.getCurrentThreadCpuTime() : -1;
    }

    /** This JVM's CPU time in ns, or -1 where the JVM does not say. */
    static long cpuNanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: Consume BOOTSTRAP TOPIC N");
            System.exit(2);
        }
        long n;
        try {
            n = Long.parseLong(args[2]);
        } catch (NumberFormatException e) {
            System.err.println("N must be a number, not " + args[2]);
            System.exit(2);
            return;
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("client.id", "perf-consumer-client");
        props.put("receive.buffer.bytes", "2097152");
        props.put("max.partition.fetch.bytes", "1048576");
        props.put("auto.offset.reset", "earliest");
        props.put("enable.auto.commit", "false");
        props.put("check.crcs", "false");
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        TopicPartition partition = new TopicPartition(args[1], 0);
        long records = 0;
        long bytes = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            long cpuStart = cpuNanos();
            long pollStart = threadNanos();
            long start = System.nanoTime();
            long lastProgress = start;
            long end = start;
            while (records < n) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(500));
                long now = System.nanoTime();
                if (batch.isEmpty()) {
                    if (now - lastProgress > 30_000_000_000L) {
                        System.err.println("only " + records + " of " + n + " records after 30 s without progress");
                        System.exit(1);
                    }
                    continue;
                }
                lastProgress = now;
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (records == n) {
                        break;
                    }
                    records++;
                    bytes += r.value() == null ? 0 : r.value().length;
                }
                end = now;
            }
            long cpuEnd = cpuNanos();
            long pollEnd = threadNanos();
            double seconds = Math.max((end - start) / 1e9, 1e-9);
            double cpuMs = cpuStart < 0 || cpuEnd < 0 ? -1 : (cpuEnd - cpuStart) / 1e6;
            double pollMs = pollStart < 0 || pollEnd < 0 ? -1 : (pollEnd - pollStart) / 1e6;
            System.out.printf(
                "CONSUMED records=%d bytes=%d ms=%.0f rps=%.0f mbps=%.1f cpu_ms=%.0f cores=%.2f"
                    + " poll_cpu_ms=%.0f poll_cores=%.2f%n",
                records, bytes, seconds * 1000, records / seconds, bytes / seconds / 1e6,
                cpuMs, cpuMs < 0 ? -1 : cpuMs / 1000 / seconds,
                pollMs, pollMs < 0 ? -1 : pollMs / 1000 / seconds);
        }
    }
}
