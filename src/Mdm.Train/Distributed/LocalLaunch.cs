using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Mdm.Kernels.Collectives;
using Mdm.Train.Cli;

namespace Mdm.Train.Distributed;

/// <summary>`train --nproc N`: starts N local ranks of this same command through Open MPI's mpirun and returns its exit
/// code (mpirun passes on a failed rank's code).</summary>
public static class LocalLaunch
{
    public const string Flag = "--nproc";
    public const int MaxProcesses = 256;

    /// <summary>mpirun on PATH, or null.</summary>
    public static string? FindMpirun() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    /// <summary>The command line given without --nproc and its value (forms: --nproc N, --nproc=N, --nproc:N).</summary>
    public static List<string> WithoutNproc(IReadOnlyList<string> args)
    {
        var kept = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == Flag) { i++; continue; }
            if (args[i].StartsWith(Flag + "=", StringComparison.Ordinal) || args[i].StartsWith(Flag + ":", StringComparison.Ordinal)) continue;
            kept.Add(args[i]);
        }
        return kept;
    }

    /// <summary>mpirun's arguments: N local ranks, no core binding (the data workers use every core), each running
    /// this program with <paramref name="args"/>.</summary>
    public static List<string> MpirunArguments(int processes, IReadOnlyList<string> args)
    {
        var list = new List<string> { "-np", processes.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--bind-to", "none" };
        if (Environment.UserName == "root") list.Add("--allow-run-as-root");
        string self = Environment.ProcessPath ?? "dotnet";
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") list.AddRange([self, "exec", typeof(LocalLaunch).Assembly.Location]);
        else list.Add(self);
        list.AddRange(WithoutNproc(args));
        return list;
    }

    public static int Run(int processes, IReadOnlyList<string> args, TextWriter log)
    {
        if (LaunchEnvironment.FromProcess().IsLaunched)
            throw new UsageException($"{Flag} {processes}: this process was itself started by a launcher (mpirun, PMI or Slurm); give {Flag} only to a process started on its own");
        string mpirun = FindMpirun() ?? throw new UsageException(
            $"{Flag} {processes} starts the ranks with Open MPI's mpirun, which is not on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev)");
        var psi = new ProcessStartInfo(mpirun) { UseShellExecute = false };
        foreach (var a in MpirunArguments(processes, args)) psi.ArgumentList.Add(a);
        log.WriteLine($"data-parallel: starting {processes} processes: mpirun {string.Join(' ', psi.ArgumentList)}");
        log.Flush();
        // Ctrl-C reaches mpirun too (same process group); it stops the ranks, and this process reports its exit code.
        using var ignoreInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode;
    }
}
