using Mdm.Train.Data;

namespace Mdm.Tests.Cli;

/// <summary>
/// `--resume` continues a run exactly as it started: the settings come from the run folder (only `--out` needed),
/// a flag that would change the run is refused, a stage boundary keeps the stage-to-stage initialisation, and the
/// loss sequence is bit-identical to an uninterrupted run (CPU backend).
/// </summary>
[NonParallelizable]
public class ResumeSettingsTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Test]
    public void KillInTheSecondStageBeforeItsFirstCheckpointResumesToTheSameLosses()
    {
        using var dir = new Data.TempFolder();
        var config = Path.Combine(dir.Path, "two-stage.json");
        File.WriteAllText(config, TrainProcess.TwoStageRunConfig(steps0: 3, steps1: 12));
        var reference = Path.Combine(dir.Path, "reference");
        var r = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--out", reference, "--seed", "3");
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("stage 1: inner model initialised from"));
        var expected = TrainProcess.MetricsLines(Path.Combine(reference, "metrics.jsonl"));

        var run = Path.Combine(dir.Path, "killed");
        using (var p = TrainProcess.Start(dir.Path, "train", "--config", config, "--out", run, "--seed", "3"))
        {
            bool inStage1 = false;
            TrainProcess.ReadUntil(p, line => (inStage1 |= line.StartsWith("stage 1", StringComparison.Ordinal)) && line.StartsWith("step", StringComparison.Ordinal), Timeout);
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        Assert.That(Directory.GetFiles(Path.Combine(run, "checkpoints"), "stage1-*"), Is.Empty, "killed too late: stage 1 already saved");
        Assert.That(TrainProcess.MetricsLines(Path.Combine(run, "metrics.jsonl")).Where(l => l.Stage == 1), Is.Not.Empty, "stage 1 logged a step before the kill");

        var resumed = TrainProcess.Run(dir.Path, Timeout, "train", "--out", run, "--resume");
        Assert.That(resumed.Code, Is.EqualTo(0), resumed.Out + resumed.Err);
        Assert.That(resumed.Out, Does.Contain("stage 0 finished").And.Contain("stage 1: inner model initialised from"));
        var got = TrainProcess.MetricsLines(Path.Combine(run, "metrics.jsonl"));
        Assert.That(got, Is.EqualTo(expected), "every (stage, step) logged once, with the uninterrupted run's losses");
    }

    [Test]
    public void ResumeWithOnlyOutKeepsEverySettingAndRefusesAConflictingFlag()
    {
        using var dir = new Data.TempFolder();
        var config = Path.Combine(dir.Path, "tiny.json");
        File.WriteAllText(config, TrainProcess.TinyRunConfig(steps: 20));
        var data = Path.Combine(dir.Path, "pngs");
        WritePngs(data, count: 6);
        string[] flags = ["--config", config, "--data", data, "--batch", "2", "--lr", "2e-3", "--grad-accumulation", "2", "--steps", "8", "--seed", "4"];
        var reference = Path.Combine(dir.Path, "reference");
        var r = TrainProcess.Run(dir.Path, Timeout, ["train", "--out", reference, .. flags]);
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        var expected = TrainProcess.Losses(Path.Combine(reference, "metrics.jsonl"));
        Assert.That(expected.Keys, Is.EqualTo(Enumerable.Range(1, 8).Select(i => (long)i)));

        // Ctrl-C after the first step: the run saves and exits 130.
        var run = Path.Combine(dir.Path, "run");
        using (var p = TrainProcess.Start(dir.Path, ["train", "--out", run, .. flags]))
        {
            TrainProcess.ReadUntil(p, line => line.StartsWith("step", StringComparison.Ordinal), Timeout);
            TrainProcess.Signal(p, "INT");
            var stopped = TrainProcess.Finish(p, Timeout);
            Assert.That(stopped.Code, Is.EqualTo(130), stopped.Out + stopped.Err);
            Assert.That(stopped.Out, Does.Contain("SIGINT: stopping after this step"));
        }
        var saved = TrainProcess.IntactCheckpoints(run);
        Assert.That(saved, Is.Not.Empty);
        Assert.That(File.Exists(Path.Combine(run, "train.lock")), Is.False, "the lock is released on exit");

        var conflict = TrainProcess.Run(dir.Path, Timeout, "train", "--out", run, "--resume", "--batch", "4");
        Assert.That(conflict.Code, Is.EqualTo(2), conflict.Out + conflict.Err);
        Assert.That(conflict.Err, Does.Contain("--batch 4 conflicts with this run's 2"));
        Assert.That(TrainProcess.IntactCheckpoints(run), Is.EqualTo(saved), "a refused resume changes nothing");

        var resumed = TrainProcess.Run(dir.Path, Timeout, "train", "--out", run, "--resume", "--sample-every", "100");
        Assert.That(resumed.Code, Is.EqualTo(0), resumed.Out + resumed.Err);
        Assert.That(resumed.Out, Does.Contain("--sample-every changed from 0 to 100").And.Contain("batch 2, 8 steps, data " + data));
        var got = TrainProcess.Losses(Path.Combine(run, "metrics.jsonl"));
        Assert.That(got.Keys, Is.EqualTo(expected.Keys));
        foreach (var (step, loss) in expected)
            Assert.That(got[step], Is.EqualTo(loss), $"step {step}: resumed loss {got[step]:R}, uninterrupted {loss:R}");
    }

    [Test]
    public void CorruptLatestCheckpointFallsBackToThePreviousOne()
    {
        using var dir = new Data.TempFolder();
        var config = Path.Combine(dir.Path, "tiny.json");
        File.WriteAllText(config, TrainProcess.TinyRunConfig(steps: 5));
        var reference = Path.Combine(dir.Path, "reference");
        var r = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--out", reference);
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        var expected = TrainProcess.Losses(Path.Combine(reference, "metrics.jsonl"));

        var run = Path.Combine(dir.Path, "run");
        var first = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--out", run, "--steps", "3");
        Assert.That(first.Code, Is.EqualTo(0), first.Out + first.Err);
        var latest = Path.Combine(run, "checkpoints", "stage0-000000003.safetensors");
        var bytes = File.ReadAllBytes(latest);
        bytes[^5] ^= 0x40;   // one flipped bit in the last tensor's data: only the checksum can tell
        File.WriteAllBytes(latest, bytes);

        var resumed = TrainProcess.Run(dir.Path, Timeout, "train", "--out", run, "--resume", "--steps", "5");
        Assert.That(resumed.Code, Is.EqualTo(0), resumed.Out + resumed.Err);
        Assert.That(resumed.Out, Does.Contain("skipping").And.Contain("checksum mismatch"));
        Assert.That(resumed.Out, Does.Contain("falling back to stage0-000000002.safetensors; skipped stage0-000000003.safetensors"));
        var got = TrainProcess.Losses(Path.Combine(run, "metrics.jsonl"));
        Assert.That(File.ReadAllLines(Path.Combine(run, "metrics.jsonl")), Has.Length.EqualTo(5), "the steps after the fallback point are logged once");
        foreach (var (step, loss) in expected) Assert.That(got[step], Is.EqualTo(loss), $"step {step}");
    }

    /// <summary>Small random-colour PNGs (12², so the loader crops and resizes them).</summary>
    internal static void WritePngs(string folder, int count)
    {
        Directory.CreateDirectory(folder);
        var rng = new Random(11);
        for (int i = 0; i < count; i++)
        {
            var image = new RgbaImage(12, 12);
            rng.NextBytes(image.Pixels);
            Png.Save(Path.Combine(folder, $"img{i}.png"), image);
        }
    }
}
