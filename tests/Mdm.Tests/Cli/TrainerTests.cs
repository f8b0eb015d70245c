using Mdm.Kernels;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Data;
using Mdm.Train.Training;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Cli;

/// <summary>The training loop in-process: non-finite losses are skipped, and 10 in a row halt the run.</summary>
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
}
