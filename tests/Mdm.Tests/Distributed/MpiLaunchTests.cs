using Mdm.Tests.Cli;

namespace Mdm.Tests.Distributed;

/// <summary>Real multi-process runs: `mpirun -np 2` on the hidden `collective-check` command, whose buffers have
/// exactly known sums, means and broadcasts (see src/Mdm.Train/Distributed/CollectiveCheck.cs).</summary>
[NonParallelizable]
public class MpiLaunchTests
{
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    [Test]
    public void TwoRanksAllReduceAndBroadcastExactly()
    {
        var r = MpiRun.Run(2, Bound, "collective-check", "--elements", "1001");
        Assert.That(r.ExitCode, Is.Zero, r.Output);
        Assert.That(r.Output, Does.Contain("rank 0/2 (local 0): MPI (Open MPI").And.Contain("rank 1/2 (local 1): MPI (Open MPI"));
        Assert.That(r.Output, Does.Contain("rank 0: all collective checks passed").And.Contain("rank 1: all collective checks passed"));
    }

    [Test]
    public void ARankThatDiesStopsTheOthersWithTheRankNamed()
    {
        var r = MpiRun.Run(2, Bound, "collective-check", "--die-rank", "1");
        Assert.That(r.ExitCode, Is.Not.Zero, r.Output);
        Assert.That(r.Output, Does.Contain("rank 1: killing myself"));
        Assert.That(r.Output, Does.Match(@"process rank 1 with PID \d+ on node \S+ exited on signal 9"), r.Output);
        Assert.That(r.Output, Does.Not.Contain("all collective checks passed"), "rank 0 must not get past the collective rank 1 never joined");
        Assert.That(r.Elapsed, Is.LessThan(Bound));
    }

    [Test]
    public void WithoutNcclTheCheckSaysWhatIsMissing()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"mdm-absent-{Guid.NewGuid():N}", "libnccl.so.2");
        using var p = TrainProcess.Start(Path.GetTempPath(), new Dictionary<string, string> { ["MDM_NCCL_LIBRARY"] = missing }, "collective-check", "--nccl");
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        Assert.That(p.WaitForExit(60_000), Is.True);
        Assert.That(p.ExitCode, Is.EqualTo(2), stdout + stderr);
        Assert.That(stderr.Trim(), Does.StartWith($"mdm: rank 0: {missing} could not be loaded").And.Not.Contain("\n"));
    }
}
