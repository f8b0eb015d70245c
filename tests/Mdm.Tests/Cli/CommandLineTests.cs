namespace Mdm.Tests.Cli;

/// <summary>Flags are validated (exit code 2 with a message naming the flag); train → sample works end to end.</summary>
[NonParallelizable]
public class CommandLineTests
{
    [TestCase("train --steps 0", "--steps")]
    [TestCase("train --batch -3", "--batch")]
    [TestCase("train --lr 5", "--lr")]
    [TestCase("train --device tpu", "tpu")]
    [TestCase("train --config /nonexistent/x.json", "not found")]
    [TestCase("train --preset nosuch", "unknown preset")]
    [TestCase("train --data /nonexistent/folder --steps 1", "--data")]
    [TestCase("train --steps abc", "abc")]
    [TestCase("train --grad-accumulation 1000000", "--grad-accumulation must be in 1..1024")]
    [TestCase("sample --checkpoint /nonexistent.safetensors", "not found")]
    [TestCase("sample", "--checkpoint")]
    [TestCase("frobnicate", "frobnicate")]
    public void BadFlagsExitWith2(string args, string mentioned)
    {
        using var dir = new Data.TempFolder();
        var (code, stdout, stderr) = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(1), args.Split(' '));
        Assert.That(code, Is.EqualTo(2), $"stdout: {stdout}\nstderr: {stderr}");
        Assert.That(stderr, Does.Contain(mentioned));
        Assert.That(stderr, Does.Not.Contain("System."), "no .NET type names or stack traces");
    }

    [Test]
    public void Bf16TrainingRoundsOperandsAndStillTrains()
    {
        using var dir = new Data.TempFolder();
        var config = Path.Combine(dir.Path, "tiny.json");
        File.WriteAllText(config, TrainProcess.TinyRunConfig(steps: 2, checkpointEvery: 2));
        var f32 = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(3), "train", "--config", config, "--out", Path.Combine(dir.Path, "f32"));
        var bf16 = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(3), "train", "--config", config, "--out", Path.Combine(dir.Path, "bf16"), "--bf16");
        Assert.That(f32.Code, Is.EqualTo(0), f32.Out + f32.Err);
        Assert.That(bf16.Code, Is.EqualTo(0), bf16.Out + bf16.Err);
        // Step 1 runs a freshly zero-initialised head (output exactly 0 either way); step 2 sees the precision.
        double a = TrainProcess.Losses(Path.Combine(dir.Path, "f32", "metrics.jsonl"))[2];
        double b = TrainProcess.Losses(Path.Combine(dir.Path, "bf16", "metrics.jsonl"))[2];
        // Same data, noise and weights: bf16 operands move the loss a little, never a lot.
        Assert.That(b, Is.Not.EqualTo(a), "--bf16 changed nothing");
        Assert.That(Math.Abs(a - b) / a, Is.LessThan(0.05), $"f32 loss {a}, bf16 loss {b}");
    }

    [Test]
    public void SampleFromCorruptCheckpointNamesTheFile()
    {
        using var dir = new Data.TempFolder();
        var bad = Path.Combine(dir.Path, "bad.safetensors");
        File.WriteAllBytes(bad, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        var (code, _, stderr) = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(1), "sample", "--checkpoint", bad);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("bad.safetensors"));
    }

    [Test]
    public void TrainThenSampleWritesEveryResolution()
    {
        using var dir = new Data.TempFolder();
        var config = Path.Combine(dir.Path, "tiny.json");
        File.WriteAllText(config, TrainProcess.TinyRunConfig(steps: 3, checkpointEvery: 3));
        var outDir = Path.Combine(dir.Path, "run");
        var t = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(3), "train", "--config", config, "--out", outDir);
        Assert.That(t.Code, Is.EqualTo(0), t.Out + t.Err);
        Assert.That(t.Out, Does.Contain("checkpoint:").And.Contain("loss plot:"));
        Assert.That(File.Exists(Path.Combine(outDir, "loss.svg")));
        Assert.That(File.Exists(Path.Combine(outDir, "samples", "samples.png")));
        Assert.That(File.Exists(Path.Combine(outDir, "samples", "samples-8px.png")));
        var ckpt = Directory.GetFiles(Path.Combine(outDir, "checkpoints")).Single();
        var png = Path.Combine(dir.Path, "s.png");
        var s = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(3), "sample", "--checkpoint", ckpt, "--steps", "5", "--n", "4", "--cfg", "2", "--class", "1", "--out", png);
        Assert.That(s.Code, Is.EqualTo(0), s.Out + s.Err);
        Assert.That(File.Exists(png) && File.Exists(Path.Combine(dir.Path, "s-8px.png")));
        var image = Mdm.Train.Data.Png.Load(png);
        Assert.That(image.Width, Is.GreaterThan(16));
        // The same in bf16 autocast (as training with --bf16): announced, and a grid of the same size.
        var png16 = Path.Combine(dir.Path, "b.png");
        var b = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(3), "sample", "--checkpoint", ckpt, "--steps", "5", "--n", "4", "--bf16", "--out", png16);
        Assert.That(b.Code, Is.EqualTo(0), b.Out + b.Err);
        Assert.That(b.Out, Does.Contain("bf16 autocast"));
        Assert.That(Mdm.Train.Data.Png.Load(png16).Width, Is.EqualTo(image.Width));
        // Training into a folder that already has checkpoints without --resume is refused (nothing is overwritten).
        var again = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(1), "train", "--config", config, "--out", outDir);
        Assert.That(again.Code, Is.EqualTo(2));
        Assert.That(again.Err, Does.Contain("--resume"));
    }
}
