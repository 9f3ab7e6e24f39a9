// The differential test's oracle: the real org.quartz.CronExpression.
//
// Reads cases from standard input, one a line:
//   <zone id> TAB <start, epoch seconds> TAB <count> TAB <expression>
// and writes one answer a line, in the same order:
//   OK TAB <fire time, epoch seconds>,<...>   (up to count; fewer when the schedule ends)
//   ERR TAB <Quartz's message>
//   HANG TAB <seconds>   (getTimeAfter did not return within the budget:
//                        Quartz loops forever on some schedules)
// One JVM answers the whole corpus, so the test pays for one start.
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.Date;
import java.util.TimeZone;
import org.quartz.CronExpression;

public class QuartzOracle {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", 4);
            out.write(bounded(parts[0], Long.parseLong(parts[1]), Integer.parseInt(parts[2]), parts[3]));
            out.write('\n');
        }
        out.flush();
    }

    static final long BUDGET_MILLIS = 5000;

    // Runs one case on its own thread and gives up on it after the budget.
    @SuppressWarnings("removal")
    static String bounded(String zone, long start, int count, String expression) throws InterruptedException {
        String[] result = new String[1];
        Thread worker = new Thread(() -> result[0] = answer(zone, start, count, expression));
        worker.setDaemon(true);
        worker.start();
        worker.join(BUDGET_MILLIS);
        if (worker.isAlive()) {
            try {
                worker.stop(); // deprecated; works up to Java 19, and the loop holds no locks of ours
            } catch (UnsupportedOperationException e) {
                // Java 20+: leave the daemon thread spinning; it dies with the JVM.
            }
            return "HANG\t" + (BUDGET_MILLIS / 1000);
        }
        return result[0];
    }

    static String answer(String zone, long start, int count, String expression) {
        CronExpression cron;
        try {
            cron = new CronExpression(expression);
        } catch (Exception e) {
            return "ERR\t" + oneLine(e.getMessage());
        }
        cron.setTimeZone(TimeZone.getTimeZone(zone));
        StringBuilder times = new StringBuilder("OK\t");
        Date after = new Date(start * 1000L);
        try {
            for (int i = 0; i < count; i++) {
                Date next = cron.getTimeAfter(after);
                if (next == null) break;
                if (i > 0) times.append(',');
                times.append(next.getTime() / 1000L);
                after = next;
            }
        } catch (RuntimeException e) {
            // Quartz accepted the expression but failed evaluating it.
            return "THROW\t" + oneLine(e.toString());
        }
        return times.toString();
    }

    static String oneLine(String message) {
        return message == null ? "" : message.replace('\t', ' ').replace('\n', ' ');
    }
}
