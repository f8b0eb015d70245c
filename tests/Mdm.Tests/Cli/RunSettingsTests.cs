using Mdm.Model.Checkpoints;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Progress;
using Mdm.Train.Training;

namespace Mdm.Tests.Cli;

/// <summary>The stored run settings against flags typed again on --resume; the saved training state is checked on load.</summary>
public class RunSettingsTests
{
    static readonly RunConfig Tiny = RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 6), "tiny");
    static readonly RunSettings Stored = RunSettings.From(new TrainSettings { Batch = 8, Lr = 5e-4, Steps = 40, GradAccumulation = 3, Data = "emoji" }, Tiny);

    static TrainSettings Resume(TrainSettings flags, params string[] given) => flags with { Resume = true, Given = given.ToHashSet() };

    [TestCase("--batch", "--batch 32 conflicts with this run's 8")]
    [TestCase("--lr", "--lr 0.002 conflicts with this run's 0.0005")]
    [TestCase("--data", "--data procedural conflicts with this run's emoji")]
    [TestCase("--grad-accumulation", "--grad-accumulation 1 conflicts with this run's 3")]
    [TestCase("--steps", "--steps 20 conflicts with this run's 40")]
    public void AConflictingFlagIsRefusedNamingBothValues(string flag, string message)
    {
        var cli = Resume(new TrainSettings { Batch = 32, Lr = 2e-3, Steps = 20, GradAccumulation = 1, Data = "procedural" }, flag);
        var e = Assert.Throws<UsageException>(() => Stored.MergeResumeFlags(cli, null, "run.json", TextWriter.Null))!;
        Assert.That(e.Message, Does.StartWith(message).And.Contain("run.json"));
    }

    [Test]
    public void SafeChangesAreAppliedAndLoggedAndUntypedFlagsKeepTheStoredValues()
    {
        var log = new StringWriter();
        var cli = Resume(new TrainSettings { Steps = 80, SampleEvery = 5, Batch = 999, Data = "procedural" }, "--steps", "--sample-every", "--out", "--resume");
        var merged = Stored.MergeResumeFlags(cli, null, "run.json", log);
        Assert.That(merged, Is.EqualTo(Stored with { Steps = 80, SampleEvery = 5 }));
        Assert.That(log.ToString(), Does.Contain("--steps changed from 40 to 80").And.Contain("--sample-every changed from 0 to 5"));
        var applied = merged.Apply(cli);
        Assert.That((applied.Batch, applied.Lr, applied.GradAccumulation, applied.Data), Is.EqualTo(((int?)8, (double?)5e-4, (int?)3, "emoji")));
    }

    [Test]
    public void ADifferentConfigIsRefusedAndTheSameOneAccepted()
    {
        var other = RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 7), "other.json");
        var cli = Resume(new TrainSettings { ConfigPath = "other.json" }, "--config");
        var e = Assert.Throws<UsageException>(() => Stored.MergeResumeFlags(cli, other, "run.json", TextWriter.Null))!;
        Assert.That(e.Message, Does.Contain("--config other.json differs from the config this run started with (tiny"));
        Assert.That(Stored.MergeResumeFlags(cli, Tiny, "run.json", TextWriter.Null), Is.EqualTo(Stored));
        Assert.That(RunSettings.Parse(Stored.ToJson(), "run.json"), Is.EqualTo(Stored), "run.json round-trips");
    }

    [TestCase("stage", 2143289344L, "'stage' is [2143289344], expected one value in 0..0")]
    [TestCase("nan_streak", -1L, "'nan_streak' is [-1]")]
    [TestCase("ema_updates", 99L, "'ema_updates' is [99], expected one value in 0..5")]
    [TestCase("step", 4L, "step 4 differs from the checkpoint's step 5")]
    public void ACorruptTrainingStateIsRefusedNamingTheValue(string name, long value, string message)
    {
        using var dir = new Data.TempFolder();
        var state = new TrainingState(0, 5, 1, 2, 5, 5, 0).ToIntegers().Select(v => v.Name == name ? (v.Name, new[] { value }) : v);
        var path = new CheckpointWriter(dir.Path, "stage0").Save(new Checkpoint(5).AddIntegers(TrainingState.Group, state));
        using var reader = CheckpointReader.Open(path);
        var e = Assert.Throws<CheckpointFormatException>(() => TrainingState.Read(reader, stage: 0, stageSteps: 6, nanStreakLimit: 10))!;
        Assert.That(e.Message, Does.Contain(message).And.Contain(path));
    }

    [Test]
    public void TheFirstProgressLineHasNoEtaAndLaterOnesUseTheStepsAfterIt()
    {
        var output = new StringWriter();
        var progress = new ProgressReporter(totalSteps: 100, startStep: 0, output, interval: TimeSpan.Zero);
        progress.Step(1, 0.5, 4, 1e-3);
        Thread.Sleep(20);
        progress.Step(2, 0.5, 4, 1e-3);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Does.Contain("ETA —"));
        Assert.That(lines[1], Does.Match(@"ETA \d"));
    }
}
