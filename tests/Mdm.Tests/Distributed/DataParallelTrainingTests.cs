using Mdm.Kernels;
using Mdm.Kernels.Collectives;
using Mdm.Model.Checkpoints;
using Mdm.Tests.Cli;
using Mdm.Tests.Harness;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Distributed;
using Mdm.Train.Training;

namespace Mdm.Tests.Distributed;

/// <summary>The trainer under mpirun: two ranks at a global batch B train what one process trains at B (with gradient
/// buckets overlapping the backward, and bit for bit the same without), a run resumes on another world size, and a
/// rank that cannot go on ends the job naming itself.</summary>
[NonParallelizable]
public class DataParallelTrainingTests
{
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(240);
    const int Steps = 4;

    static string[] TrainArgs(string config, string outDir) =>
        ["train", "--config", config, "--out", outDir, "--sample-every", "0", "--data-workers", "1"];

    static TrainSettings Settings(string outDir, bool resume = false) =>
        new() { OutDir = outDir, SampleEvery = 0, DataWorkers = 1, Resume = resume };

    [Test]
    public void TwoRanksTrainWhatOneProcessTrainsAndResumeOnOne()
    {
        MpiRun.RequireMpirun();
        using var dir = new Data.TempFolder();
        string configText = TrainProcess.TinyRunConfig(steps: Steps, checkpointEvery: 2), configFile = dir.File("tiny.json");
        File.WriteAllText(configFile, configText);
        var config = RunConfig.Parse(configText, configFile);
        string single = dir.File("single"), ranks = dir.File("ranks"), unbucketed = dir.File("unbucketed"), resumed = dir.File("resumed");

        new Trainer(Settings(single), config, TestBackends.Get(BackendKind.Cpu), TextWriter.Null, CancellationToken.None).Run();
        // 2 KB buckets: the tiny model's gradients travel in dozens of all-reduces started while the backward runs.
        var r = MpiRun.Run(2, Bound, [.. TrainArgs(configFile, ranks), "--grad-buckets", "0.002"]);
        Assert.That(r.ExitCode, Is.Zero, r.Output);
        Assert.That(r.Output, Does.Contain("data-parallel: 2 processes of 2 samples each, gradients averaged over MPI"));
        var overlap = System.Text.RegularExpressions.Regex.Match(r.Output, @"gradients, last step: (\d+) of (\d+) bucket all-reduces started before the backward's last gradient");
        Assert.That(overlap.Success, Is.True, r.Output);
        int started = int.Parse(overlap.Groups[1].Value), bucketCount = int.Parse(overlap.Groups[2].Value);
        Assert.That(bucketCount, Is.GreaterThan(10), r.Output);
        // From step 2 the plan follows the backward's order: only the bucket of the last gradient (and one of
        // parameters never reported, if any) can start at or after its end.
        Assert.That(started, Is.GreaterThanOrEqualTo(bucketCount - 2), "the buckets start while the backward still computes");

        var want = TrainProcess.Losses(Path.Combine(single, "metrics.jsonl"));
        var got = TrainProcess.Losses(Path.Combine(ranks, "metrics.jsonl"));
        Assert.That(got.Keys, Is.EqualTo(want.Keys), "rank 0 alone logs each step once");
        foreach (var (step, loss) in want)
            Assert.That(got[step], Is.EqualTo(loss).Within(1e-5 * (1 + Math.Abs(loss))), $"loss of step {step}: the ranks trained on other samples or draws");
        ExpectSameTraining(Final(single), Final(ranks));

        // One all-reduce after the backward: at 2 ranks each element is a + b either way, so the runs agree bit for bit.
        var u = MpiRun.Run(2, Bound, [.. TrainArgs(configFile, unbucketed), "--grad-buckets", "off"]);
        Assert.That(u.ExitCode, Is.Zero, u.Output);
        Assert.That(u.Output, Does.Contain("gradients: in one all-reduce after the backward"));
        ExpectSameTraining(Final(unbucketed), Final(ranks), tolerance: 0);

        // The 2-rank run's step-2 checkpoint continues on one process: the data position is global.
        Directory.CreateDirectory(Path.Combine(resumed, Trainer.CheckpointFolder));
        File.Copy(Path.Combine(ranks, RunSettings.FileName), Path.Combine(resumed, RunSettings.FileName));
        string halfway = Path.Combine(Trainer.CheckpointFolder, "stage0-000000002.safetensors");
        File.Copy(Path.Combine(ranks, halfway), Path.Combine(resumed, halfway));
        new Trainer(Settings(resumed, resume: true), config, TestBackends.Get(BackendKind.Cpu), TextWriter.Null, CancellationToken.None).Run();
        ExpectSameTraining(Final(single), Final(resumed));
    }

    static string Final(string run) => Path.Combine(run, Trainer.CheckpointFolder, $"stage0-{Steps:D9}.safetensors");

    /// <summary>The data position and counters exactly; weights, EMA and moments within f32 summation order (or as
    /// close as <paramref name="tolerance"/> says).</summary>
    static void ExpectSameTraining(string wantPath, string gotPath, double tolerance = 1e-5)
    {
        using var want = CheckpointReader.Open(wantPath);
        using var got = CheckpointReader.Open(gotPath);
        foreach (var name in want.Names(TrainingState.Group))
            Assert.That(got.ReadInt64(TrainingState.Group, name), Is.EqualTo(want.ReadInt64(TrainingState.Group, name)), $"training state '{name}'");
        int compared = 0;
        foreach (var group in new[] { "model", "ema", "optimizer" })
            foreach (var name in want.Names(group))
            {
                float[] a = want.ReadF32(group, name), b = got.ReadF32(group, name);
                for (int i = 0; i < a.Length; i++)
                    if (!(Math.Abs(a[i] - b[i]) <= tolerance * (1 + Math.Abs(a[i]))))
                        Assert.Fail($"{group}.{name}[{i}]: {b[i]:G9} in {gotPath}, {a[i]:G9} in {wantPath}");
                compared++;
            }
        Assert.That(compared, Is.GreaterThan(50), "tensors compared");
    }

    [Test]
    public void ARankGivenOtherSettingsEndsTheJobNamingItself()
    {
        MpiRun.RequireMpirun();
        using var dir = new Data.TempFolder();
        string configFile = dir.File("tiny.json"), outDir = dir.File("run");
        File.WriteAllText(configFile, TrainProcess.TinyRunConfig(steps: Steps));
        var r = MpiRun.RunEach(Bound, TrainArgs(configFile, outDir), [.. TrainArgs(configFile, outDir), "--seed", "2"]);
        Assert.That(r.ExitCode, Is.EqualTo(ExitCodes.Usage), r.Output);
        Assert.That(r.Output, Does.Contain("mdm: rank 1: the run settings and resume point of rank 1 differ from rank 0's"));
        Assert.That(r.Output, Does.Not.Contain("checkpoint: "), "no rank may finish the run");
        Assert.That(r.Elapsed, Is.LessThan(Bound));
    }

    /// <summary>A world of <paramref name="size"/> seen from rank 0, communicating nothing: enough for the checks that
    /// refuse a run before its first collective.</summary>
    sealed class WorldOf(int size) : Collective
    {
        public override int Rank => 0;
        public override int WorldSize => size;
        public override int LocalRank => 0;
        public override string Name => $"a test world of {size}";
        public override void AllReduceSum(Span<float> buffer) { }
        public override void Broadcast(Span<byte> buffer, int root) { }
        public override void Barrier() { }
        public override void Dispose() { }
    }

    [Test]
    public void AGlobalBatchThatDoesNotSplitOverTheRanksIsRefused()
    {
        using var dir = new Data.TempFolder();
        var config = RunConfig.Parse(TrainProcess.TinyRunConfig(steps: Steps), "tiny");
        var trainer = new Trainer(Settings(dir.Path) with { Batch = 6 }, config, TestBackends.Get(BackendKind.Cpu), TextWriter.Null, CancellationToken.None,
            collective: new WorldOf(4));
        var e = Assert.Throws<UsageException>(() => trainer.Run())!;
        Assert.That(e.Message, Is.EqualTo("--batch 6 does not split over 4 processes; give a global batch divisible by 4"));
        Assert.That(ExitCodes.Classify(e)!.Value.Code, Is.EqualTo(ExitCodes.Usage));
    }

    [Test]
    public void ACollectiveFailureHasItsOwnExitCode() =>
        Assert.That(ExitCodes.Classify(new CollectiveException("MPI rank 1: MPI_Allreduce failed"))!.Value, Is.EqualTo((ExitCodes.CollectiveFailed, "MPI rank 1: MPI_Allreduce failed")));

    [TestCase(new[] { "train", "--nproc", "2", "--steps", "3" }, new[] { "train", "--steps", "3" })]
    [TestCase(new[] { "train", "--nproc=2", "--out", "x" }, new[] { "train", "--out", "x" })]
    [TestCase(new[] { "train", "--out", "x", "--nproc:4" }, new[] { "train", "--out", "x" })]
    public void NprocIsNotPassedOnToTheRanks(string[] given, string[] passed) =>
        Assert.That(LocalLaunch.WithoutNproc(given), Is.EqualTo(passed));

    [Test]
    public void NprocWithoutMpirunSaysWhatIsMissing()
    {
        using var dir = new Data.TempFolder();
        var (code, stdout, stderr) = TrainProcess.Run(dir.Path, TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["PATH"] = dir.Path },
            "train", "--nproc", "2", "--out", dir.File("run"));
        Assert.That(code, Is.EqualTo(ExitCodes.Usage), stdout + stderr);
        Assert.That(stderr.Trim(), Is.EqualTo("mdm: --nproc 2 starts the ranks with Open MPI's mpirun, which is not on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev)"));
    }
}
