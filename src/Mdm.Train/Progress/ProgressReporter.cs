using System.Diagnostics;

namespace Mdm.Train.Progress;

/// <summary>
/// One progress line every few seconds (and at the first and last step): step, running loss, images/s, lr, ETA.
/// Plain lines, so logs stay readable when stdout is not a terminal.
/// </summary>
public sealed class ProgressReporter(long totalSteps, long startStep, TextWriter output, TimeSpan? interval = null)
{
    readonly Stopwatch clock = Stopwatch.StartNew();
    readonly TimeSpan every = interval ?? TimeSpan.FromSeconds(3);
    TimeSpan lastPrint = TimeSpan.MinValue;
    long images;
    double runningLoss = double.NaN;
    // The ETA is measured from the end of the first step: that one also pays for start-up (JIT, kernel compiles).
    TimeSpan firstStepDone;
    long firstStep = -1;

    public double RunningLoss => runningLoss;

    /// <summary>Record a finished step; prints when due. Running loss is an EMA with weight 0.05 (NaN steps skipped).</summary>
    public void Step(long step, double loss, int batchImages, double lr, string? extra = null)
    {
        images += batchImages;
        if (double.IsFinite(loss)) runningLoss = double.IsNaN(runningLoss) ? loss : 0.95 * runningLoss + 0.05 * loss;
        var now = clock.Elapsed;
        if (firstStep < 0) (firstStep, firstStepDone) = (step, now);
        bool last = step >= totalSteps;
        if (!last && step != startStep + 1 && now - lastPrint < every) return;
        lastPrint = now;
        double secs = Math.Max(now.TotalSeconds, 1e-9);
        string eta = step == firstStep && !last ? "—"
            : Format(TimeSpan.FromSeconds((totalSteps - step) * (now - firstStepDone).TotalSeconds / Math.Max(step - firstStep, 1)));
        output.WriteLine($"step {step,6}/{totalSteps} | loss {loss,8:F5} (avg {runningLoss:F5}) | {images / secs,7:F1} img/s | lr {lr:0.0e+0} | " +
                         $"elapsed {Format(now)} | ETA {eta}{(extra is null ? "" : " | " + extra)}");
        output.Flush();
    }

    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:D2}s" : $"{t.TotalSeconds:F1}s";
}
