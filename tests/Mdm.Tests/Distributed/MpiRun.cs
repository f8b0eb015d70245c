using System.Diagnostics;
using Mdm.Tests.Cli;

namespace Mdm.Tests.Distributed;

/// <summary>Runs Mdm.Train under Open MPI's mpirun (local ranks, no core binding: the test machine may have fewer
/// cores than ranks).</summary>
public static class MpiRun
{
    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed);

    /// <summary>mpirun's path, or null when Open MPI is not installed.</summary>
    public static string? Find() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    public static string RequireMpirun()
    {
        var path = Find();
        if (path is null) Assert.Ignore("mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev); the multi-process tests need Open MPI");
        return path!;
    }

    static readonly string[] Options = ["--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "--mca", "btl_vader_single_copy_mechanism", "none"];

    /// <summary>Runs `mpirun -np <paramref name="ranks"/> dotnet exec Mdm.Train.dll args…`, killing it after
    /// <paramref name="timeout"/> (then failing the test).</summary>
    public static Result Run(int ranks, TimeSpan timeout, params string[] args) =>
        Launch(timeout, [.. Options, "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "dotnet", "exec", TrainProcess.Dll, .. args]);

    /// <summary>One rank per entry of <paramref name="perRank"/>, each with its own arguments (mpirun's `A : B` form).</summary>
    public static Result RunEach(TimeSpan timeout, params string[][] perRank) =>
        Launch(timeout, [.. Options, .. perRank.SelectMany((args, i) => (string[])[.. (i > 0 ? new[] { ":" } : []), "-np", "1", "dotnet", "exec", TrainProcess.Dll, .. args])]);

    static Result Launch(TimeSpan timeout, string[] mpirunArgs)
    {
        var args = mpirunArgs;
        var psi = new ProcessStartInfo(RequireMpirun()) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in mpirunArgs) psi.ArgumentList.Add(a);
        psi.Environment["MDM_DEVICE"] = "cpu";
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"mpirun {string.Join(' ', args)} did not end within {timeout.TotalSeconds} s\n{stdout.Result}\n{stderr.Result}");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result + stderr.Result, clock.Elapsed);
    }
}
