using Mdm.Kernels;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Data;
using Mdm.Train.Training;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Cli;

/// <summary>The training loop in-process: non-finite losses are skipped, and 10 in a row halt the run; a data file
/// that breaks after validation stops the run only once the steps done so far are saved.</summary>
public class TrainerTests
{
    /// <summary>Images whose pixels are NaN (a broken data pipeline).</summary>
    sealed class NaNImages(int size) : IImageDataset
    {
        public int Count => 64;
        public IReadOnlyList<int> SampleShape => [3, size, size];
        public int NumClasses => 6;
        public IReadOnlyList<string> ClassNames => ["a", "b", "c", "d", "e", "f"];
        public int ImageSize => size;
        public int Channels => 3;
        public int LoadInto(int index, Span<float> destination) { destination.Fill(float.NaN); return index % 6; }
    }

    [Test]
    public void TenNonFiniteLossesInARowHaltTheRun()
    {
        using var dir = new Data.TempFolder();
        var config = RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 30, checkpointEvery: 100), "tiny");
        var settings = new TrainSettings { OutDir = dir.Path, Steps = 30 };
        var log = new StringWriter();
        var trainer = new Trainer(settings, config, TestBackends.Get(BackendKind.Cpu), log, CancellationToken.None, size => new NaNImages(size));
        var e = Assert.Throws<TrainingHaltedException>(() => trainer.Run());
        Assert.That(e!.Message, Does.Contain("step 10").And.Contain("non-finite"));
        Assert.That(log.ToString(), Does.Contain("step 1: loss is NaN; step skipped"));
        var lines = File.ReadAllLines(Path.Combine(dir.Path, "metrics.jsonl"));
        Assert.That(lines, Has.Length.EqualTo(10));
        Assert.That(lines, Has.All.Contains("\"loss\":\"nan\""));
    }

    /// <summary>Files that read fine during validation, then one fails (changed on disk while training).</summary>
    sealed class BreaksAfter(int size, int goodReads) : IImageDataset, IFileDataset
    {
        int reads;
        public int Count => 16;
        public IReadOnlyList<int> SampleShape => [3, size, size];
        public int NumClasses => 6;
        public IReadOnlyList<string> ClassNames => ["a", "b", "c", "d", "e", "f"];
        public int ImageSize => size;
        public int Channels => 3;
        public string SourceOf(int index) => $"img{index}.png";
        public int LoadInto(int index, Span<float> destination)
        {
            if (Interlocked.Increment(ref reads) > goodReads) throw new ImageFormatException(SourceOf(index), "truncated after validation");
            destination.Fill(index / 16f - 0.5f);
            return index % 6;
        }
    }

    [Test]
    public void ADataErrorMidRunSavesTheStepsDoneFirst()
    {
        using var dir = new Data.TempFolder();
        var config = RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 10, checkpointEvery: 100), "tiny");
        var log = new StringWriter();
        // 16 reads validate the set; batch 4 → steps 1-3 read 12 more, step 4 fails.
        var trainer = new Trainer(new TrainSettings { OutDir = dir.Path }, config, TestBackends.Get(BackendKind.Cpu), log, CancellationToken.None,
            size => new BreaksAfter(size, goodReads: 16 + 12));
        var e = Assert.Throws<ImageFormatException>(() => trainer.Run())!;
        Assert.That(ExitCodes.Classify(e)!.Value.Code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(log.ToString(), Does.Contain("data error at step 4: checkpoint").And.Contain("written first"));
        var saved = TrainProcess.IntactCheckpoints(dir.Path);
        Assert.That(saved.Select(c => c.Name), Is.EqualTo(new[] { "stage0-000000003.safetensors" }));
    }
}
