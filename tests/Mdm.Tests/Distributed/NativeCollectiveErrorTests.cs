using Mdm.Kernels;
using Mdm.Kernels.Collectives;

namespace Mdm.Tests.Distributed;

/// <summary>What a user sees when MPI or NCCL cannot start: one line naming what is missing and how to get it.</summary>
public class NativeCollectiveErrorTests
{
    static readonly LaunchEnvironment Launched = new(0, 2, 0, "mpirun");

    [Test]
    public void MpiRefusesAProcessNotStartedByALauncher()
    {
        var e = Assert.Throws<CollectiveException>(() => MpiCollective.Open(new LaunchEnvironment(0, 1, 0, LaunchEnvironment.None)))!;
        Assert.That(e.Message, Does.Contain("not started by mpirun").And.Contain("mpirun -np N"));
    }

    [Test]
    public void AMissingMpiLibraryIsNamedWithTheInstallCommand()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"mdm-absent-{Guid.NewGuid():N}", "libmpi.so.40");
        var e = Assert.Throws<CollectiveException>(() => MpiCollective.Open(Launched, missing))!;
        Assert.That(e.Message, Does.StartWith($"{missing} could not be loaded (").And.Contain("apt-get install openmpi-bin libopenmpi-dev"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void AMissingNcclLibraryIsNamedWithWhereToFindIt()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"mdm-absent-{Guid.NewGuid():N}", "libnccl.so.2");
        using var bootstrap = new SingleProcessCollective();
        using var backend = Backends.Create(BackendKind.Cpu);
        var e = Assert.Throws<CollectiveException>(() => NcclCollective.Open(bootstrap, backend, missing))!;
        Assert.That(e.Message, Does.StartWith($"{missing} could not be loaded (").And.Contain("LD_LIBRARY_PATH").And.Contain("MDM_NCCL_LIBRARY"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void ALibraryWithoutNcclsSymbolsIsRefusedNamingTheSymbol()
    {
        using var bootstrap = new SingleProcessCollective();
        using var backend = Backends.Create(BackendKind.Cpu);
        var e = Assert.Throws<CollectiveException>(() => NcclCollective.Open(bootstrap, backend, "libc.so.6"))!;
        Assert.That(e.Message, Is.EqualTo("libc.so.6 has no symbol ncclGetVersion: not the expected library version"));
    }
}
