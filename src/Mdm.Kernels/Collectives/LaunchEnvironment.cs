namespace Mdm.Kernels.Collectives;

/// <summary>Where this process sits in a multi-process launch: its rank, the world size and its rank on this node,
/// read from the launcher's environment (Open MPI's mpirun, then PMI, then Slurm's srun). A process started on its
/// own is rank 0 of 1.</summary>
public sealed record LaunchEnvironment(int Rank, int WorldSize, int LocalRank, string Launcher)
{
    /// <summary>The launcher name of a process started on its own.</summary>
    public const string None = "none";

    public bool IsLaunched => Launcher != None;

    static readonly (string Launcher, string Rank, string Size, string? LocalRank)[] Sources =
    [
        ("mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
        ("pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
        ("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
    ];

    public static LaunchEnvironment FromProcess() => From(Environment.GetEnvironmentVariable);

    /// <summary>Reads the first launcher whose rank and size variables are both set. A variable that is set but not a
    /// valid number, or a rank outside the world, is refused naming the variable.</summary>
    public static LaunchEnvironment From(Func<string, string?> variable)
    {
        foreach (var (launcher, rankName, sizeName, localName) in Sources)
        {
            if (variable(rankName) is not { } rankText || variable(sizeName) is not { } sizeText) continue;
            int size = Parse(sizeName, sizeText, 1);
            int rank = Parse(rankName, rankText, 0);
            if (rank >= size) throw new CollectiveException($"{rankName}={rank} is not below {sizeName}={size}");
            int local = localName is not null && variable(localName) is { } localText ? Parse(localName, localText, 0) : rank;
            return new LaunchEnvironment(rank, size, local, launcher);
        }
        return new LaunchEnvironment(0, 1, 0, None);
    }

    static int Parse(string name, string text, int minimum) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) && v >= minimum
            ? v : throw new CollectiveException($"{name}='{text}' is not an integer >= {minimum}");
}
