using System.Diagnostics;
using Mdm.Model.Checkpoints;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Cli;

/// <summary>
/// Kills a small training run with SIGKILL at random points (at least 5 times), resuming each time: no checkpoint is
/// ever corrupt, and the resumed run's loss sequence equals the uninterrupted one exactly (CPU backend).
/// </summary>
[NonParallelizable]
public class ResumeAfterKillTests
{
    [Test]
    public void KilledRunsResumeToTheSameLossSequence()
    {
        var rng = TestSeed.NewRandom();
        const int steps = 14;
        using var dir = new Data.TempFolder();
        var config = Path.Combine(dir.Path, "tiny.json");
        File.WriteAllText(config, TrainProcess.TinyRunConfig(steps));
        var timeout = TimeSpan.FromMinutes(3);

        var reference = Path.Combine(dir.Path, "reference");
        var (code, stdout, stderr) = TrainProcess.Run(dir.Path, timeout, "train", "--config", config, "--out", reference, "--seed", "5", "--keep-last", "2");
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        var expected = TrainProcess.Losses(Path.Combine(reference, "metrics.jsonl"));
        Assert.That(expected.Keys, Is.EqualTo(Enumerable.Range(1, steps).Select(i => (long)i)));

        var run = Path.Combine(dir.Path, "killed");
        int kills = 0, attempts = 0;
        while (kills < 5 && attempts++ < 20)
        {
            var args = new List<string> { "train", "--config", config, "--out", run, "--seed", "5", "--keep-last", "2" };
            if (Directory.Exists(Path.Combine(run, "checkpoints")) && Directory.EnumerateFiles(Path.Combine(run, "checkpoints")).Any()) args.Add("--resume");
            using var p = TrainProcess.Start(dir.Path, args.ToArray());
            _ = p.StandardOutput.ReadToEndAsync(); _ = p.StandardError.ReadToEndAsync();
            // Kill somewhere between start-up and a few steps in (the run takes a few seconds in all).
            int delay = rng.Next(400, 2500);
            if (p.WaitForExit(delay)) continue;   // finished before the kill: try again from the latest state
            p.Kill(entireProcessTree: true);      // SIGKILL on Linux
            p.WaitForExit();
            kills++;
            // Every checkpoint on disk must open and validate; no temporary file may masquerade as one.
            foreach (var (step, path) in CheckpointWriter.List(Path.Combine(run, "checkpoints"), "stage0"))
                Assert.DoesNotThrow(() => { using var r = CheckpointReader.Open(path); Assert.That(r.Step, Is.EqualTo(step)); }, $"corrupt checkpoint {path}");
        }
        Assert.That(kills, Is.GreaterThanOrEqualTo(5), "the run finished too fast to be killed 5 times");

        var final = TrainProcess.Run(dir.Path, timeout, "train", "--config", config, "--out", run, "--seed", "5", "--keep-last", "2", "--resume");
        Assert.That(final.Code, Is.EqualTo(0), final.Out + final.Err);
        var got = TrainProcess.Losses(Path.Combine(run, "metrics.jsonl"));
        Assert.That(got.Keys, Is.EqualTo(expected.Keys), "every step logged exactly once after the kills");
        foreach (var (step, loss) in expected)
            Assert.That(got[step], Is.EqualTo(loss), $"step {step}: resumed loss {got[step]:R} differs from the uninterrupted {loss:R} ({kills} kills)");
        TestContext.Out.WriteLine($"{kills} kills, {attempts} starts, losses identical over {steps} steps");
    }
}
