using Mdm.Kernels.Gpu;
using Mdm.Model.Checkpoints;
using Mdm.Train.Data;
using Mdm.Train.Training;

namespace Mdm.Train.Cli;

/// <summary>The CLI's exit codes (README.md lists them): one per kind of outcome, so scripts and schedulers can act on them.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>An unexpected internal error (a bug: printed with its stack trace), or a GPU kernel failed to compile / ran out of memory.</summary>
    public const int Internal = 1;
    /// <summary>Bad flags or input: config, data, checkpoint, --out, no such device.</summary>
    public const int Usage = 2;
    /// <summary>Training halted on non-finite losses.</summary>
    public const int NonFinite = 3;
    /// <summary>Writing failed during the run (disk full, I/O error); every checkpoint saved before is kept.</summary>
    public const int WriteFailed = 4;
    /// <summary>Another live run holds the run folder's lock.</summary>
    public const int Locked = 5;
    /// <summary>Data-parallel: the collective could not start or failed (MPI or NCCL missing, a call failed on a rank).</summary>
    public const int CollectiveFailed = 6;
    /// <summary>SIGINT (Ctrl-C): 128 + 2, as shells report it.</summary>
    public const int Interrupted = 130;
    /// <summary>SIGTERM (schedulers, docker stop): 128 + 15.</summary>
    public const int Terminated = 143;

    /// <summary>The one line to print and the exit code for an expected failure; null for a bug (let it surface).</summary>
    public static (int Code, string Message)? Classify(Exception e) => e switch
    {
        UsageException or ArgumentException or CheckpointFormatException or ImageFormatException or DataFormatException
            or StateDictMismatchException or BadDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException => (Usage, e.Message),
        TrainingHaltedException => (NonFinite, e.Message),
        RunFolderLockedException => (Locked, e.Message),
        Mdm.Kernels.Collectives.CollectiveException => (CollectiveFailed, e.Message),
        CheckpointWriteException => (WriteFailed, e.Message),
        IOException when DiskSpace.IsDiskFull(e) => (WriteFailed, $"disk full: {e.Message}"),
        IOException => (WriteFailed, $"I/O error: {e.Message}"),
        KernelCompileException => (Internal, e.Message),
        _ => null,
    };
}

/// <summary>A second run tried to use a run folder whose lock a live process holds.</summary>
public sealed class RunFolderLockedException(string message) : Exception(message);

/// <summary>A checkpoint could not be written (the message says why, and which earlier checkpoints are intact).</summary>
public sealed class CheckpointWriteException(string message, Exception inner) : IOException(message, inner);

/// <summary>Recognising "no space left on device" and describing free space.</summary>
public static class DiskSpace
{
    const int Enospc = 28, WindowsDiskFull = 0x70, WindowsHandleDiskFull = 0x27;

    public static bool IsDiskFull(Exception e) => e is IOException io && (io.HResult & 0xFFFF) is Enospc or WindowsDiskFull or WindowsHandleDiskFull
        || e.InnerException is { } inner && IsDiskFull(inner);

    /// <summary>Free bytes on the file system holding <paramref name="folder"/>, or null when it cannot be told.</summary>
    public static long? Free(string folder)
    {
        try { return new DriveInfo(Path.GetFullPath(folder)).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return null; }
    }
}
