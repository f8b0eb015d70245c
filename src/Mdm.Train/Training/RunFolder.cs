using System.Diagnostics;
using System.Globalization;
using Mdm.Train.Cli;

namespace Mdm.Train.Training;

/// <summary>
/// The run folder (--out), checked before any work, and its lock file <c>train.lock</c> holding the owner's PID:
/// one run per folder. The lock is removed on exit; a lock whose process is gone (killed) is taken over with a message.
/// </summary>
public sealed class RunFolder : IDisposable
{
    public const string LockName = "train.lock";

    RunFolder(string path) => Path = path;

    public string Path { get; }
    string LockPath => System.IO.Path.Combine(Path, LockName);
    bool held;

    /// <summary>Creates the folder if needed, proves it writable, and takes its lock.</summary>
    public static RunFolder Open(string path, TextWriter log)
    {
        CheckWritable(path);
        var folder = new RunFolder(path);
        folder.Lock(log);
        return folder;
    }

    /// <summary>--out must be a folder we can create files in (and any metrics.jsonl in it must be writable).</summary>
    public static void CheckWritable(string path)
    {
        if (File.Exists(path)) throw new UsageException($"--out {path} is a file; give a folder for the run");
        try
        {
            Directory.CreateDirectory(path);
            var probe = System.IO.Path.Combine(path, $".write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--out {path} is not writable: {e.Message}");
        }
        var metrics = System.IO.Path.Combine(path, "metrics.jsonl");
        if (System.IO.Path.Exists(metrics))
            try { using var _ = new FileStream(metrics, FileMode.Append, FileAccess.Write, FileShare.ReadWrite); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"{metrics} is not writable: {e.Message}");
            }
    }

    void Lock(TextWriter log)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                using (var f = new FileStream(LockPath, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                using (var w = new StreamWriter(f)) w.Write(Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                held = true;
                return;
            }
            catch (IOException) when (File.Exists(LockPath))
            {
                int? owner = ReadOwner();
                if (owner is { } pid && IsAlive(pid))
                    throw new RunFolderLockedException($"--out {Path} is in use by process {pid} ({LockPath}); wait for that run to finish, or choose another --out");
                log.WriteLine($"run folder: taking over the stale lock {LockPath} ({(owner is { } p ? $"process {p} is no longer running" : "no process id in it")})");
                try { File.Delete(LockPath); } catch (IOException) { }
            }
        }
        throw new RunFolderLockedException($"--out {Path}: could not take the lock {LockPath} (another run keeps taking it)");
    }

    int? ReadOwner()
    {
        try { return int.TryParse(File.ReadAllText(LockPath).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : null; }
        catch (IOException) { return null; }
    }

    static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId) return false;
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }          // no such process
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Removes the lock (also called on the abort path, where no finally block runs).</summary>
    public void Release()
    {
        if (!held) return;
        held = false;
        try { File.Delete(LockPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose() => Release();
}
