// One member of a consumer group with the Java client (KafkaConsumer.subscribe),
// as test_groups.py drives it: process each record, commitSync after each
// poll, until SIGTERM (then close, which leaves the group). Prints the same
// lines as group_member.py: ADD p,p / REVOKE p,p / REC p offset t / COMMITFAIL why.
//
// Usage: java -cp 'lib/*' GroupMember.java BOOTSTRAP GROUP TOPIC NAME [ASSIGNOR] [SLEEP_MS]
//   ASSIGNOR: range (default) or cooperative-sticky

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupMember {
    static synchronized void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static String parts(Collection<TopicPartition> ps) {
        return ps.stream().map(TopicPartition::partition).sorted().map(String::valueOf)
            .collect(Collectors.joining(","));
    }

    public static void main(String[] args) throws Exception {
        String assignor = args.length > 4 ? args[4] : "range";
        long sleepMs = args.length > 5 ? Long.parseLong(args[5]) : 0;
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, args[1]);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, args[3]);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "20");
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
            assignor.equals("cooperative-sticky")
                ? "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
                : "org.apache.kafka.clients.consumer.RangeAssignor");
        KafkaConsumer<byte[], byte[]> c =
            new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            c.wakeup();
            try {
                main.join(10_000);
            } catch (InterruptedException e) {
                // exiting anyway
            }
        }));
        c.subscribe(List.of(args[2]), new ConsumerRebalanceListener() {
            public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                out("REVOKE " + parts(ps));
            }

            public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                out("ADD " + parts(ps));
            }

            public void onPartitionsLost(Collection<TopicPartition> ps) {
                out("REVOKE " + parts(ps));
            }
        });
        try {
            while (true) {
                ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    if (sleepMs > 0) {
                        Thread.sleep(sleepMs);
                    }
                    out("REC " + r.partition() + " " + r.offset() + " " + (System.currentTimeMillis() / 1000.0));
                }
                if (!records.isEmpty()) {
                    try {
                        c.commitSync();
                    } catch (WakeupException e) {
                        throw e;
                    } catch (KafkaException e) {
                        out("COMMITFAIL " + e);
                    }
                }
            }
        } catch (WakeupException e) {
            // SIGTERM: leave the group.
        } finally {
            c.close();
        }
    }
}
