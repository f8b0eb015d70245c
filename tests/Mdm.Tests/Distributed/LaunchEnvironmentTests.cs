using Mdm.Kernels.Collectives;

namespace Mdm.Tests.Distributed;

public class LaunchEnvironmentTests
{
    static LaunchEnvironment Read(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return LaunchEnvironment.From(name => map.GetValueOrDefault(name));
    }

    [Test]
    public void OpenMpiVariablesGiveRankSizeAndLocalRank()
    {
        var e = Read(("OMPI_COMM_WORLD_RANK", "5"), ("OMPI_COMM_WORLD_SIZE", "8"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"));
        Assert.That(e, Is.EqualTo(new LaunchEnvironment(5, 8, 1, "mpirun")));
        Assert.That(e.IsLaunched, Is.True);
    }

    [Test]
    public void OpenMpiWinsOverSlurmWhenBothAreSet()
    {
        var e = Read(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4"), ("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "4"));
        Assert.That((e.Rank, e.Launcher), Is.EqualTo((3, "mpirun")));
    }

    [Test]
    public void PmiThenSlurmAreTheFallbacks()
    {
        Assert.That(Read(("PMI_RANK", "2"), ("PMI_SIZE", "3"), ("MPI_LOCALRANKID", "0"), ("SLURM_PROCID", "7"), ("SLURM_NTASKS", "9")),
            Is.EqualTo(new LaunchEnvironment(2, 3, 0, "pmi")));
        Assert.That(Read(("SLURM_PROCID", "7"), ("SLURM_NTASKS", "9"), ("SLURM_LOCALID", "3")), Is.EqualTo(new LaunchEnvironment(7, 9, 3, "slurm")));
    }

    [Test]
    public void LocalRankDefaultsToTheRankWhenTheLauncherOmitsIt()
    {
        Assert.That(Read(("PMI_RANK", "1"), ("PMI_SIZE", "2")).LocalRank, Is.EqualTo(1));
    }

    [Test]
    public void NoLauncherIsRankZeroOfOne()
    {
        var e = Read(("OMPI_COMM_WORLD_RANK", "1"));   // a size is needed too
        Assert.That(e, Is.EqualTo(new LaunchEnvironment(0, 1, 0, LaunchEnvironment.None)));
        Assert.That(e.IsLaunched, Is.False);
    }

    [TestCase("OMPI_COMM_WORLD_SIZE", "two", "OMPI_COMM_WORLD_SIZE='two'")]
    [TestCase("OMPI_COMM_WORLD_SIZE", "0", "OMPI_COMM_WORLD_SIZE='0'")]
    [TestCase("OMPI_COMM_WORLD_RANK", "-1", "OMPI_COMM_WORLD_RANK='-1'")]
    [TestCase("OMPI_COMM_WORLD_RANK", "4", "OMPI_COMM_WORLD_RANK=4 is not below OMPI_COMM_WORLD_SIZE=4")]
    [TestCase("OMPI_COMM_WORLD_LOCAL_RANK", "x", "OMPI_COMM_WORLD_LOCAL_RANK='x'")]
    public void BadValuesAreRefusedNamingTheVariable(string name, string value, string expected)
    {
        var map = new Dictionary<string, string> { ["OMPI_COMM_WORLD_RANK"] = "1", ["OMPI_COMM_WORLD_SIZE"] = "4", [name] = value };
        var e = Assert.Throws<CollectiveException>(() => LaunchEnvironment.From(n => map.GetValueOrDefault(n)))!;
        Assert.That(e.Message, Does.Contain(expected));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }
}
