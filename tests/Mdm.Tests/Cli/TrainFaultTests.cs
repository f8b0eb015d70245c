using Mdm.Kernels;
using Mdm.Model.Checkpoints;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Training;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Cli;

/// <summary>
/// Each expected fault ends with one clear line and its documented exit code, and loses nothing already saved:
/// bad data, a bad --out, no device, a locked run folder, SIGTERM, a second SIGINT, a full disk, NaN weights.
/// </summary>
[NonParallelizable]
public class TrainFaultTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [TestCase("truncated")]
    [TestCase("unreadable")]
    public void BadImageIsFoundBeforeStep1AndCanBeSkipped(string fault)
    {
        using var dir = new Data.TempFolder();
        var config = TinyConfig(dir, steps: 4);
        var data = Path.Combine(dir.Path, "pngs");
        ResumeSettingsTests.WritePngs(data, count: 6);
        var run = Path.Combine(dir.Path, "run");
        var first = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--data", data, "--batch", "2", "--steps", "2", "--out", run);
        Assert.That(first.Code, Is.EqualTo(0), first.Out + first.Err);
        var saved = TrainProcess.IntactCheckpoints(run);

        var bad = Path.Combine(data, "img3.png");
        if (fault == "truncated") File.WriteAllBytes(bad, File.ReadAllBytes(bad)[..40]);
        else MakeUnreadable(bad);
        var refused = TrainProcess.Run(dir.Path, Timeout, "train", "--out", run, "--resume", "--steps", "4");
        Assert.That(refused.Code, Is.EqualTo(2), refused.Out + refused.Err);
        Assert.That(refused.Err, Does.Contain("1 of 6 samples cannot be read").And.Contain("img3.png").And.Contain("--skip-bad-data"));
        Assert.That(refused.Err, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(TrainProcess.IntactCheckpoints(run), Is.EqualTo(saved), "nothing saved is touched");

        var skipped = TrainProcess.Run(dir.Path, Timeout, "train", "--out", run, "--resume", "--steps", "4", "--skip-bad-data");
        Assert.That(skipped.Code, Is.EqualTo(0), skipped.Out + skipped.Err);
        Assert.That(skipped.Out, Does.Contain("--skip-bad-data: leaving out 1 of 6 samples").And.Contain("img3.png"));
    }

    /// <summary>Mode 000 where that stops this process (not root); otherwise a link to nothing: either way the bytes cannot be read.</summary>
    static void MakeUnreadable(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.None);
            try { File.ReadAllBytes(path); }
            catch (UnauthorizedAccessException) { return; }
        }
        File.Delete(path);
        File.CreateSymbolicLink(path, path + ".missing");
    }

    static string TinyConfig(Data.TempFolder dir, int steps = 4, int checkpointEvery = 1)
    {
        var path = Path.Combine(dir.Path, "tiny.json");
        File.WriteAllText(path, TrainProcess.TinyRunConfig(steps, checkpointEvery));
        return path;
    }

    [TestCase("file")]
    [TestCase("under-a-file")]
    [TestCase("metrics-not-writable")]
    public void BadOutIsRefusedBeforeAnyWork(string fault)
    {
        using var dir = new Data.TempFolder();
        var file = Path.Combine(dir.Path, "notes.txt");
        File.WriteAllText(file, "keep me");
        var run = Path.Combine(dir.Path, "run");
        Directory.CreateDirectory(Path.Combine(run, "metrics.jsonl"));   // a folder where the metrics file should be
        var (outDir, message) = fault switch
        {
            "file" => (file, "is a file"),
            "under-a-file" => (Path.Combine(file, "run"), "is not writable"),
            _ => (run, "metrics.jsonl is not writable"),
        };
        var r = TrainProcess.Run(dir.Path, Timeout, "train", "--config", TinyConfig(dir), "--steps", "1", "--out", outDir);
        Assert.That(r.Code, Is.EqualTo(2), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain(message));
        Assert.That(r.Out, Does.Not.Contain("stage 0"), "refused before training started");
        Assert.That(File.ReadAllText(file), Is.EqualTo("keep me"));
    }

    [Test]
    public void NoDeviceIsAnInputError()
    {
        using var dir = new Data.TempFolder();
        var run = Path.Combine(dir.Path, "run");
        var hidden = new Dictionary<string, string> { ["CUDA_VISIBLE_DEVICES"] = "" };   // no GPU, even on a machine with one
        var r = TrainProcess.Run(dir.Path, Timeout, hidden, "train", "--device", "cuda", "--steps", "1", "--out", run);
        Assert.That(r.Code, Is.EqualTo(2), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("--device cuda: no usable GPU").And.Contain("--device cpu"));
        Assert.That(File.Exists(Path.Combine(run, RunFolder.LockName)), Is.False);
    }

    [Test]
    public void SecondRunOnALockedFolderIsRefusedAndAStaleLockIsTakenOver()
    {
        using var dir = new Data.TempFolder();
        var run = Path.Combine(dir.Path, "run");
        Directory.CreateDirectory(run);
        var lockFile = Path.Combine(run, RunFolder.LockName);
        File.WriteAllText(lockFile, Environment.ProcessId.ToString());   // a live process holds it
        var config = TinyConfig(dir);
        var refused = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--steps", "1", "--out", run);
        Assert.That(refused.Code, Is.EqualTo(ExitCodes.Locked), refused.Out + refused.Err);
        Assert.That(refused.Err, Does.Contain($"is in use by process {Environment.ProcessId}"));
        Assert.That(File.ReadAllText(lockFile), Is.EqualTo(Environment.ProcessId.ToString()), "the owner's lock is left alone");
        Assert.That(Directory.GetFileSystemEntries(run), Has.Length.EqualTo(1), "nothing written");

        using (var gone = System.Diagnostics.Process.Start("true")!) { gone.WaitForExit(); File.WriteAllText(lockFile, gone.Id.ToString()); }
        var taken = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--steps", "1", "--batch", "2", "--out", run);
        Assert.That(taken.Code, Is.EqualTo(0), taken.Out + taken.Err);
        Assert.That(taken.Out, Does.Contain("taking over the stale lock").And.Contain("is no longer running"));
        Assert.That(File.Exists(lockFile), Is.False, "released on exit");
    }

    [Test]
    public void SigtermSavesACheckpointAndExits143()
    {
        using var dir = new Data.TempFolder();
        var config = TinyConfig(dir, steps: 200, checkpointEvery: 1000);
        var run = Path.Combine(dir.Path, "run");
        using var p = TrainProcess.Start(dir.Path, "train", "--config", config, "--out", run);
        TrainProcess.ReadUntil(p, line => line.StartsWith("step", StringComparison.Ordinal), Timeout);
        TrainProcess.Signal(p, "TERM");
        var r = TrainProcess.Finish(p, Timeout);
        Assert.That(r.Code, Is.EqualTo(143), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("SIGTERM: stopping after this step").And.Contain("continue with --resume"));
        Assert.That(TrainProcess.IntactCheckpoints(run), Has.Count.EqualTo(1), "the stop wrote a checkpoint");
        Assert.That(File.Exists(Path.Combine(run, RunFolder.LockName)), Is.False);
    }

    [Test]
    public void SecondSigintAbortsAtOnceWithCheckpointsIntact()
    {
        using var dir = new Data.TempFolder();
        var config = TinyConfig(dir, steps: 200, checkpointEvery: 1);
        var run = Path.Combine(dir.Path, "run");
        // Batch 32: a step takes long enough for the second signal to land inside it.
        using var p = TrainProcess.Start(dir.Path, "train", "--config", config, "--out", run, "--batch", "32");
        TrainProcess.ReadUntil(p, line => line.StartsWith("step", StringComparison.Ordinal), Timeout);
        var checkpoints = Path.Combine(run, "checkpoints");
        var deadline = DateTime.UtcNow + Timeout;
        while (CheckpointWriter.List(checkpoints, "stage0").Count == 0 && DateTime.UtcNow < deadline) Thread.Sleep(20);
        var before = CheckpointWriter.List(checkpoints, "stage0");
        Assert.That(before, Is.Not.Empty, "no checkpoint was written");
        TrainProcess.Signal(p, "INT");
        Thread.Sleep(50);   // well inside the step (about a second at batch 32), apart enough to arrive as two signals
        TrainProcess.Signal(p, "INT");
        var r = TrainProcess.Finish(p, Timeout);
        Assert.That(r.Code, Is.EqualTo(130), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("SIGINT again: aborting now"));
        var after = TrainProcess.IntactCheckpoints(run).Select(c => c.Name).ToList();
        Assert.That(after, Does.Contain(Path.GetFileName(before[0].Path)), "the checkpoint written before the signals survives the abort");
        Assert.That(File.Exists(Path.Combine(run, RunFolder.LockName)), Is.False);
    }

    [Test]
    public void DiskFullDuringACheckpointKeepsTheEarlierOnesAndSaysHowMuchIsNeeded()
    {
        using var dir = new Data.TempFolder();
        var config = RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 5, checkpointEvery: 1), "tiny");
        int saves = 0;
        Stream FullOnThirdSave(Stream s) => ++saves == 3 ? new DiskFullAfter(s, 1000) : s;
        var trainer = new Trainer(new TrainSettings { OutDir = dir.Path, KeepLast = 5 }, config, TestBackends.Get(BackendKind.Cpu), new StringWriter(),
            CancellationToken.None, wrapCheckpointOutput: FullOnThirdSave);
        var e = Assert.Throws<CheckpointWriteException>(() => trainer.Run())!;
        var (code, message) = ExitCodes.Classify(e)!.Value;
        Assert.That(code, Is.EqualTo(ExitCodes.WriteFailed));
        Assert.That(message, Does.Contain("step-3 checkpoint").And.Contain("disk full: it needs").And.Contain("bytes")
            .And.Contain("the earlier checkpoints are kept (stage0-000000001.safetensors, stage0-000000002.safetensors)").And.Contain("--resume"));
        var left = TrainProcess.IntactCheckpoints(dir.Path);
        Assert.That(left.Select(c => c.Name), Is.EqualTo(new[] { "stage0-000000001.safetensors", "stage0-000000002.safetensors" }), "no partial file left");
        Assert.That(Directory.GetFiles(Path.Combine(dir.Path, "checkpoints"), ".*"), Is.Empty, "the temp file is removed");
    }

    /// <summary>Accepts <c>limit</c> bytes, then fails as Linux does when the disk is full (ENOSPC).</summary>
    sealed class DiskFullAfter(Stream inner, long limit) : Stream
    {
        long written;
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (written + buffer.Length > limit) throw new IOException("No space left on device", 28);
            written += buffer.Length;
            inner.Write(buffer);
        }
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => written;
        public override long Position { get => written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    [Test]
    public void SampleRefusesNaNWeightsAndABadOut()
    {
        using var dir = new Data.TempFolder();
        var path = Path.Combine(dir.Path, "nan.safetensors");
        SampleCommandTests.SaveCheckpoint(RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 1), "tiny"), path, (i, weights) =>
        {
            if (i != 3) return null;
            var values = weights.ToArray();
            values[values.Length / 2] = float.NaN;
            return weights.Backend.FromArray(values, weights.Shape);
        });
        var before = File.ReadAllBytes(path);

        var png = Path.Combine(dir.Path, "s.png");
        var r = TrainProcess.Run(dir.Path, Timeout, "sample", "--checkpoint", path, "--steps", "2", "--n", "2", "--out", png);
        Assert.That(r.Code, Is.EqualTo(2), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("nan.safetensors").And.Contain("1 of").And.Contain("'ema' weights are NaN or infinite"));
        Assert.That(File.Exists(png), Is.False);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));

        var grid = Directory.CreateDirectory(Path.Combine(dir.Path, "grid.png")).FullName;
        var folder = TrainProcess.Run(dir.Path, Timeout, "sample", "--checkpoint", path, "--out", grid);
        Assert.That(folder.Code, Is.EqualTo(2));
        Assert.That(folder.Err, Does.Contain("is a folder"));
    }
}
