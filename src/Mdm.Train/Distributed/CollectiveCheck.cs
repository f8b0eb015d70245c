using System.CommandLine;
using Mdm.Kernels;
using Mdm.Kernels.Collectives;

namespace Mdm.Train.Distributed;

/// <summary>The hidden `collective-check` command: run under mpirun, every rank all-reduces and broadcasts buffers
/// whose results are known exactly (small integers in f32) and reports each check. `--die-rank R` makes rank R kill
/// itself after the first all-reduce while the others wait in the next collective (a non-blocking all-reduce, as a
/// gradient bucket's), to test failure handling.
/// `--nccl` also all-reduces a CUDA tensor through NCCL (unique id bootstrapped over the collective above).
/// Exit codes: 0 every check matched; 1 a result differed; 2 the collective could not start or failed.</summary>
public static class CollectiveCheck
{
    public static Command Build()
    {
        var dieRank = new Option<int?>("--die-rank") { Description = "this rank kills itself (SIGKILL) after the first all-reduce" };
        var elements = new Option<int>("--elements") { Description = "buffer length", DefaultValueFactory = _ => 1001 };
        var nccl = new Option<bool>("--nccl") { Description = "also all-reduce a CUDA tensor through NCCL" };
        var time = new Option<int>("--time") { Description = "after the checks, time this many all-reduce averages of the buffer (rank 0 prints the mean)" };
        var command = new Command("collective-check", "check the collectives under mpirun (all-reduce, broadcast, barrier)") { Hidden = true };
        command.Options.Add(dieRank); command.Options.Add(elements); command.Options.Add(nccl); command.Options.Add(time);
        command.SetAction(p => Run(p.GetValue(elements), p.GetValue(dieRank), p.GetValue(nccl), p.GetValue(time), Console.Out, Console.Error));
        return command;
    }

    public static int Run(int elements, int? dieRank, bool nccl, int timedRepeats, TextWriter output, TextWriter errors)
    {
        int rank = -1;
        try
        {
            using var collective = Collective.FromEnvironment();
            rank = collective.Rank;
            output.WriteLine($"rank {rank}/{collective.WorldSize} (local {collective.LocalRank}): {collective.Name}");
            var failures = new List<string>();
            CheckSum(collective, elements, failures);
            if (dieRank == rank)
            {
                output.WriteLine($"rank {rank}: killing myself");
                output.Flush();
                System.Diagnostics.Process.GetCurrentProcess().Kill();
            }
            CheckStartedSum(collective, elements, failures);
            CheckAverage(collective, elements, failures);
            CheckBroadcast(collective, elements, failures);
            using (var cpu = Backends.Create(BackendKind.Cpu)) CheckTensor(collective, cpu, elements, failures);
            if (nccl) CheckNccl(collective, elements, output, failures);
            collective.Barrier();
            if (timedRepeats > 0) Time(collective, elements, timedRepeats, output);
            foreach (var f in failures) errors.WriteLine($"mdm: rank {rank}: {f}");
            output.WriteLine(failures.Count == 0 ? $"rank {rank}: all collective checks passed" : $"rank {rank}: {failures.Count} checks failed");
            return failures.Count == 0 ? 0 : 1;
        }
        catch (CollectiveException e)
        {
            output.Flush();
            errors.WriteLine($"mdm: {(rank >= 0 ? $"rank {rank}: " : "")}{e.Message}");
            return 2;
        }
    }

    /// <summary>Rank r contributes (r + 1)·(i + 1): the sum is (i + 1)·N(N + 1)/2, exact in f32 for small N and i.</summary>
    static void CheckSum(Collective c, int n, List<string> failures)
    {
        var buffer = new float[n];
        for (int i = 0; i < n; i++) buffer[i] = (c.Rank + 1f) * (i + 1);
        c.AllReduceSum(buffer);
        float ranks = c.WorldSize * (c.WorldSize + 1) / 2f;
        Expect(buffer, i => (i + 1) * ranks, "all-reduce sum", failures);
    }

    /// <summary>The sum of <see cref="CheckSum"/> started without waiting, in two halves (two buckets in flight at
    /// once), polled until done as the gradient buckets poll from the backward.</summary>
    static void CheckStartedSum(Collective c, int n, List<string> failures)
    {
        var buffer = GC.AllocateArray<float>(n, pinned: true);
        for (int i = 0; i < n; i++) buffer[i] = (c.Rank + 1f) * (i + 1);
        int half = n / 2;
        var first = c.StartAllReduceSum(buffer.AsMemory(0, half));
        var second = c.StartAllReduceSum(buffer.AsMemory(half));
        while (!first.Test()) Thread.Yield();
        second.Wait();
        float ranks = c.WorldSize * (c.WorldSize + 1) / 2f;
        Expect(buffer, i => (i + 1) * ranks, "started all-reduce sum", failures);
    }

    /// <summary>Rank r contributes 2r + i: the mean is N − 1 + i.</summary>
    static void CheckAverage(Collective c, int n, List<string> failures)
    {
        var buffer = new float[n];
        for (int i = 0; i < n; i++) buffer[i] = 2f * c.Rank + i;
        c.AllReduceAverage(buffer);
        Expect(buffer, i => c.WorldSize - 1f + i, "all-reduce average", failures);
    }

    /// <summary>The last rank broadcasts its pattern; every other rank starts from a different one.</summary>
    static void CheckBroadcast(Collective c, int n, List<string> failures)
    {
        int root = c.WorldSize - 1;
        var buffer = new float[n];
        for (int i = 0; i < n; i++) buffer[i] = c.Rank == root ? 3f * i - 7f : -1f - c.Rank;
        c.Broadcast(buffer, root);
        Expect(buffer, i => 3f * i - 7f, $"broadcast from rank {root}", failures);
    }

    /// <summary>NCCL on this rank's GPU: the library is looked for first, so a host without it says so.</summary>
    static void CheckNccl(Collective bootstrap, int n, TextWriter output, List<string> failures)
    {
        using var backend = Backends.CudaStatus().Available ? Backends.Create(BackendKind.Cuda) : Backends.Create(BackendKind.Cpu);
        using var nccl = NcclCollective.Open(bootstrap, backend);
        output.WriteLine($"rank {nccl.Rank}: {nccl.Name}");
        CheckTensor(nccl, backend, n, failures);
    }

    /// <summary>The sum of <see cref="CheckSum"/> and the mean of <see cref="CheckAverage"/> on tensors of <paramref name="backend"/>.</summary>
    static void CheckTensor(Collective c, Backend backend, int n, List<string> failures)
    {
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (c.Rank + 1f) * (i + 1);
        using var tensor = backend.FromArray(values, n);
        c.AllReduceSum(tensor);
        float ranks = c.WorldSize * (c.WorldSize + 1) / 2f;
        Expect(tensor.ToArray(), i => (i + 1) * ranks, "tensor all-reduce sum", failures);
        for (int i = 0; i < n; i++) values[i] = 2f * c.Rank + i;
        using var mean = backend.FromArray(values, n);
        c.AllReduceAverage(mean);
        Expect(mean.ToArray(), i => c.WorldSize - 1f + i, "tensor all-reduce average", failures);
    }

    /// <summary>One warm-up, then the mean wall time of <paramref name="repeats"/> all-reduce averages (what a data-parallel
    /// step adds for a model of <paramref name="n"/> parameters).</summary>
    static void Time(Collective c, int n, int repeats, TextWriter output)
    {
        var buffer = new float[n];
        c.AllReduceAverage(buffer);
        c.Barrier();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) c.AllReduceAverage(buffer);
        double ms = clock.Elapsed.TotalMilliseconds / repeats;
        if (c.Rank == 0) output.WriteLine($"all-reduce average of {n} floats on {c.WorldSize} ranks: {ms:F3} ms per call (mean of {repeats})");
    }

    static void Expect(float[] actual, Func<int, float> expected, string what, List<string> failures)
    {
        for (int i = 0; i < actual.Length; i++)
            if (actual[i] != expected(i)) { failures.Add($"{what}: element {i} is {actual[i]}, expected {expected(i)}"); return; }
    }
}
