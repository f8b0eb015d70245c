namespace Mdm.Model.Checkpoints;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content, never a partial file:
/// write to a temp file in the same folder, flush it to disk (fsync), then rename it over the target.
/// If writing fails, the temp file is deleted and the target is untouched.
/// </summary>
public static class AtomicFile
{
    public const string TempSuffix = ".tmp";

    /// <summary>Temp files are hidden siblings: <c>.{name}.{random}.tmp</c>.</summary>
    public static bool IsTempFileOf(string tempFileName, string targetFileName) =>
        tempFileName.StartsWith("." + targetFileName + ".", StringComparison.Ordinal) && tempFileName.EndsWith(TempSuffix, StringComparison.Ordinal);

    /// <param name="wrap">Optional wrapper around the temp-file stream (progress, hashing, failure injection in tests).</param>
    public static void Write(string path, Action<Stream> write, Func<Stream, Stream>? wrap = null)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"AtomicFile: '{path}' has no folder");
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                var stream = wrap?.Invoke(file) ?? file;
                write(stream);
                stream.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);   // rename(2): atomic on POSIX file systems
            TrySyncFolder(folder);                    // make the rename itself durable
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>fsync(2) of the folder on Linux, so the rename survives a power cut; best effort (.NET has no API for
    /// it). True when the folder was synced.</summary>
    public static bool TrySyncFolder(string folder)
    {
        if (!OperatingSystem.IsLinux()) return false;
        const int ReadOnly = 0, Directory = 0x10000;   // O_RDONLY | O_DIRECTORY
        try
        {
            int fd = Libc.open(folder, ReadOnly | Directory);
            if (fd < 0) return false;
            bool ok = Libc.fsync(fd) == 0;
            Libc.close(fd);
            return ok;
        }
        catch (DllNotFoundException) { return false; }   // no libc by that name: the file itself is still synced
        catch (EntryPointNotFoundException) { return false; }
    }

    static class Libc
    {
        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)] public static extern int open(string path, int flags);
        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)] public static extern int fsync(int fd);
        [System.Runtime.InteropServices.DllImport("libc")] public static extern int close(int fd);
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }              // best effort: the original exception matters more
        catch (UnauthorizedAccessException) { }
    }
}
