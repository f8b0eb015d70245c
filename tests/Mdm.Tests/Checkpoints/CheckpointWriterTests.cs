using Mdm.Kernels;
using Mdm.Model.Checkpoints;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Checkpoints;

/// <summary>Atomic checkpoint writes, keep-last-N pruning, and reading groups and metadata back.</summary>
public class CheckpointWriterTests
{
    string folder = null!;
    Backend B => TestBackends.Get(BackendKind.Cpu);

    [SetUp]
    public void MakeFolder()
    {
        TestSeed.NewRandom();
        folder = Path.Combine(Path.GetTempPath(), "mdm-ckpt-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
    }

    [TearDown]
    public void RemoveFolder()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    string[] FileNames() => Directory.GetFiles(folder).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToArray();

    static Checkpoint Small(long step, float value)
    {
        var c = new Checkpoint(step);
        c.Metadata["note"] = $"value {value}";
        c.AddIntegers("state", [("values", [(long)value])]);
        return c;
    }

    /// <summary>Passes writes through until <paramref name="failAfter"/> bytes, then fails like a full disk.</summary>
    sealed class FailingStream(Stream inner, long failAfter) : Stream
    {
        long written;
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            long room = failAfter - written;
            if (buffer.Length > room)
            {
                inner.Write(buffer[..(int)Math.Max(room, 0)]);
                written = failAfter;
                throw new IOException($"simulated disk failure after {failAfter} bytes");
            }
            inner.Write(buffer);
            written += buffer.Length;
        }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    [Test]
    public void SavesGroupsMetadataAndStepAndLoadsThemBack()
    {
        var model = new TinyUNet(B, seed: 21);
        var ema = new TinyUNet(B, seed: 22);
        var restored = new TinyUNet(B, seed: 23);
        var restoredEma = new TinyUNet(B, seed: 24);
        using var moment = B.FromArray(TestSeed.Uniform(new Random(TestSeed.Current), 12), 3, 4);
        using var momentBack = B.Zeros(3, 4);
        try
        {
            var c = new Checkpoint(1200)
                .AddModule("model", model)
                .AddModule("ema", ema, SafeTensorsDType.BF16)
                .AddTensors("adam_m", [("conv_in.weight", moment)])
                .AddIntegers("counters", [("adam_step", [1200L]), ("rng", [long.MinValue, 42])]);
            c.Metadata["config"] = """{"resolutions":[64,16],"channels":[32,64]}""";
            c.Metadata["loss"] = "0.125";
            string path = new CheckpointWriter(folder, "run").Save(c);
            Assert.That(Path.GetFileName(path), Is.EqualTo("run-000001200.safetensors"));

            using var reader = CheckpointReader.Open(path);
            Assert.That(reader.Step, Is.EqualTo(1200));
            Assert.That(reader.Groups, Is.EqualTo(new[] { "model", "ema", "adam_m", "counters" }));
            Assert.That(reader.GetMetadata("config"), Is.EqualTo(c.Metadata["config"]));
            Assert.That(reader.GetMetadata("loss"), Is.EqualTo("0.125"));
            Assert.That(reader.GetMetadata("mdm.format"), Is.EqualTo(Checkpoint.FormatVersion));
            Assert.That(reader.Names("model"), Is.EquivalentTo(model.NamedParameters().Select(p => p.Name)));

            Assert.That(reader.LoadModule("model", restored).IsComplete);
            foreach (var ((name, p), (_, q)) in model.NamedParameters().Zip(restored.NamedParameters()))
                Assert.That(q.Data.ToArray(), Is.EqualTo(p.Data.ToArray()), $"model '{name}'");
            Assert.That(reader.LoadModule("ema", restoredEma).IsComplete);
            foreach (var ((name, p), (_, q)) in ema.NamedParameters().Zip(restoredEma.NamedParameters()))
                Assert.That(q.Data.ToArray(), Is.EqualTo(p.Data.ToArray().Select(v => BFloat16.ToFloat(BFloat16.FromFloat(v))).ToArray()), $"ema '{name}' (BF16)");
            Assert.That(reader.LoadTensors("adam_m", [("conv_in.weight", momentBack)]).IsComplete);
            Assert.That(momentBack.ToArray(), Is.EqualTo(moment.ToArray()));
            Assert.That(reader.ReadInt64("counters", "rng"), Is.EqualTo(new[] { long.MinValue, 42L }), "integers are exact");
            Assert.That(reader.ReadInt64("counters", "adam_step"), Is.EqualTo(new[] { 1200L }));
            var missing = Assert.Throws<KeyNotFoundException>(() => reader.LoadModule("optimizer", restored));
            Assert.That(missing!.Message, Does.Contain("no group 'optimizer'").And.Contain("model, ema, adam_m, counters"));
        }
        finally { model.DisposeParameters(); ema.DisposeParameters(); restored.DisposeParameters(); restoredEma.DisposeParameters(); }
    }

    [Test]
    public void FailedWriteLeavesThePreviousCheckpointIntactAndNoTempFile()
    {
        var writer = new CheckpointWriter(folder, keepLast: 2);
        string first = writer.Save(Small(100, 1f));
        writer.Save(Small(200, 2f));
        var before = Directory.GetFiles(folder).ToDictionary(p => p, File.ReadAllBytes);

        foreach (long failAfter in new long[] { 0, 5, 8, 40, 150 })
        {
            var failing = new CheckpointWriter(folder, keepLast: 2) { WrapOutput = s => new FailingStream(s, failAfter) };
            // A new step (which would prune step 100) and a rewrite of an existing step both fail cleanly.
            foreach (long step in new long[] { 300, 200 })
            {
                var e = Assert.Throws<IOException>(() => failing.Save(Small(step, 3f)), $"step {step}, failing after {failAfter} bytes");
                Assert.That(e!.Message, Does.Contain("simulated disk failure"));
                Assert.That(FileNames(), Is.EqualTo(new[] { "checkpoint-000000100.safetensors", "checkpoint-000000200.safetensors" }),
                    $"after a failure at byte {failAfter}: no temp file, no partial step {step}, nothing pruned");
                foreach (var (path, bytes) in before)
                    Assert.That(File.ReadAllBytes(path), Is.EqualTo(bytes), $"{Path.GetFileName(path)} unchanged");
            }
        }
        using var stillReadable = CheckpointReader.Open(first);
        Assert.That(stillReadable.ReadInt64("state", "values"), Is.EqualTo(new[] { 1L }));
    }

    [Test]
    public void AtomicFileReplacesWholeContentOrNothing()
    {
        string target = Path.Combine(folder, "sub", "model.safetensors");
        AtomicFile.Write(target, s => s.Write("old content"u8));
        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(target, s =>
        {
            s.Write("new cont"u8);
            throw new InvalidOperationException("writer crashed");
        }));
        Assert.That(e!.Message, Is.EqualTo("writer crashed"));
        Assert.That(File.ReadAllText(target), Is.EqualTo("old content"));
        Assert.That(Directory.GetFiles(Path.Combine(folder, "sub")).Select(Path.GetFileName), Is.EqualTo(new[] { "model.safetensors" }));
        AtomicFile.Write(target, s => s.Write("new content"u8));
        Assert.That(File.ReadAllText(target), Is.EqualTo("new content"));
        Assert.That(AtomicFile.IsTempFileOf(".model.safetensors.0123abcd.tmp", "model.safetensors"));
    }

    [Test]
    public void TheFolderIsSyncedOnLinux()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("folder fsync is Linux-only");
        Assert.That(AtomicFile.TrySyncFolder(folder), "open(O_DIRECTORY) + fsync of the checkpoint folder");
        Assert.That(AtomicFile.TrySyncFolder(Path.Combine(folder, "missing")), Is.False);
    }

    [Test]
    public void TheNextSaveRemovesTempFilesAKilledWriterLeft()
    {
        string leftover = Path.Combine(folder, ".checkpoint-000000010.safetensors.0123abcd.tmp");
        string unrelated = Path.Combine(folder, ".notes.txt.0123abcd.tmp");
        File.WriteAllText(leftover, "half a checkpoint");
        File.WriteAllText(unrelated, "someone else's");
        new CheckpointWriter(folder).Save(Small(20, 1));
        Assert.That(File.Exists(leftover), Is.False, "the stale temp file of a checkpoint is removed");
        Assert.That(File.Exists(unrelated), "temp files that are not this writer's checkpoints stay");
        Assert.That(CheckpointWriter.List(folder).Select(c => c.Step), Is.EqualTo(new[] { 20L }));
    }

    [Test]
    public void KeepsTheLastNCheckpoints()
    {
        File.WriteAllText(Path.Combine(folder, "other-000000001.safetensors"), "another run");
        File.WriteAllText(Path.Combine(folder, "checkpoint-notes.txt"), "not a checkpoint");
        var writer = new CheckpointWriter(folder, keepLast: 3);
        for (long step = 1; step <= 6; step++) writer.Save(Small(step * 10, step));
        Assert.That(CheckpointWriter.List(folder).Select(c => c.Step), Is.EqualTo(new long[] { 40, 50, 60 }));
        Assert.That(FileNames(), Does.Contain("other-000000001.safetensors").And.Contain("checkpoint-notes.txt"), "other files are left alone");

        // Saving an older step (a resumed run) keeps it and the newest others.
        writer.Save(Small(20, 9f));
        Assert.That(CheckpointWriter.List(folder).Select(c => c.Step), Is.EqualTo(new long[] { 20, 50, 60 }));
        // Saving an existing step replaces it.
        writer.Save(Small(60, 7f));
        using (var latest = CheckpointReader.OpenLatest(folder)!)
        {
            Assert.That(latest.Step, Is.EqualTo(60));
            Assert.That(latest.GetMetadata("note"), Is.EqualTo("value 7"));
        }
        new CheckpointWriter(folder, keepLast: 1).Save(Small(70, 1f));
        Assert.That(CheckpointWriter.List(folder).Select(c => c.Step), Is.EqualTo(new long[] { 70 }));
        Assert.That(CheckpointReader.OpenLatest(Path.Combine(folder, "empty")), Is.Null);
    }

    [Test]
    public void RejectsBadCheckpointsAndOpensPlainFiles()
    {
        var c = new Checkpoint(1).AddIntegers("a", [("x", [1L])]);
        Assert.That(Assert.Throws<ArgumentException>(() => c.AddIntegers("a", [("y", [1L])]))!.Message, Does.Contain("group 'a' added twice"));
        Assert.That(Assert.Throws<ArgumentException>(() => c.AddIntegers("a.b", []))!.Message, Does.Contain("group name 'a.b'"));
        c.Metadata["mdm.step"] = "5";
        Assert.That(Assert.Throws<ArgumentException>(() => new CheckpointWriter(folder).Save(c))!.Message, Does.Contain("'mdm.step' is reserved"));
        Assert.That(FileNames(), Is.Empty);
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new CheckpointWriter(folder, keepLast: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new Checkpoint(-1));

        string plain = Path.Combine(folder, "plain.safetensors");
        new SafeTensorsWriter().AddF32("conv_in.weight", [1], [1f]).Save(plain);
        using (var reader = CheckpointReader.Open(plain))
            Assert.That((reader.Step, reader.Groups.Count), Is.EqualTo((0L, 0)));

        var bad = new SafeTensorsWriter();
        bad.Metadata["mdm.step"] = "twelve";
        string badPath = Path.Combine(folder, "bad.safetensors");
        bad.Save(badPath);
        var e = Assert.Throws<CheckpointFormatException>(() => CheckpointReader.Open(badPath));
        Assert.That(e!.Message, Does.Contain(badPath).And.Contain("'mdm.step' is 'twelve'"));
    }
}
