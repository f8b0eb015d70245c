using System.Runtime.InteropServices;
using System.Text;
using Mdm.Kernels.Collectives;
using Mdm.Train.Cli;

namespace Mdm.Train.Distributed;

/// <summary>What the trainer needs around the collective: the same-everywhere checks, step statistics summed over the
/// ranks, and the failure path (a rank that fails names itself and ends the whole job).</summary>
public static class DataParallel
{
    /// <summary>MDM_NCCL=1: a single CUDA process reduces its gradients through a one-rank NCCL communicator too (checks
    /// the NCCL path and measures its overhead on one GPU).</summary>
    public const string NcclVariable = "MDM_NCCL";

    public static bool NcclRequested => Environment.GetEnvironmentVariable(NcclVariable) == "1";

    /// <summary>Runs one rank's work. A failure on a rank of a multi-process run prints one line naming the rank and
    /// ends every rank through the collective (MPI_Abort) with the failure's exit code, so no rank waits in a
    /// collective the failed one will never join.</summary>
    public static int Run(Collective collective, TextWriter errors, Func<int> body)
    {
        if (collective.WorldSize == 1) return body();
        try { return body(); }
        catch (Exception e)
        {
            var failure = ExitCodes.Classify(e);
            Console.Out.Flush();
            errors.WriteLine(failure is { } f ? $"mdm: rank {collective.Rank}: {f.Message}" : $"mdm: rank {collective.Rank}: internal error: {e}");
            errors.Flush();
            collective.Abort(failure?.Code ?? ExitCodes.Internal);
            throw;
        }
    }

    /// <summary>Refuses to go on when this rank's <paramref name="value"/> differs from rank 0's (every rank must train
    /// the same settings on the same data).</summary>
    public static void CheckSameAsRankZero(Collective collective, string what, string value)
    {
        if (collective.WorldSize == 1) return;
        var mine = Hash(value);
        Span<ulong> rootHash = [mine];
        collective.Broadcast(MemoryMarshal.AsBytes(rootHash), 0);
        if (rootHash[0] != mine)
            throw new UsageException($"{what} of rank {collective.Rank} differ from rank 0's; start every rank with the same command line and data");
    }

    static ulong Hash(string text)
    {
        ulong h = 14695981039346656037UL;   // FNV-1a
        foreach (byte b in Encoding.UTF8.GetBytes(text)) h = (h ^ b) * 1099511628211UL;
        return h;
    }

    /// <summary>The element-wise sum of <paramref name="values"/> over the ranks (in f32 on the wire; a single process
    /// gets its values back unchanged).</summary>
    public static double[] SumOverRanks(Collective collective, double[] values)
    {
        if (collective.WorldSize == 1) return values;
        var buffer = Array.ConvertAll(values, v => (float)v);
        collective.AllReduceSum(buffer);
        return Array.ConvertAll(buffer, v => (double)v);
    }
}
