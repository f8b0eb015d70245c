using System.Runtime.InteropServices;

namespace Mdm.Kernels.Collectives;

/// <summary>Locates the collective libraries at run time, so the build and a single-process run never need them.</summary>
static class NativeLibraries
{
    const int RtldNow = 0x2, RtldGlobal = 0x100;

    [DllImport("libc.so.6", EntryPoint = "dlopen")]
    static extern nint DlOpen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libc.so.6", EntryPoint = "dlerror")]
    static extern nint DlError();

    /// <summary>Loads <paramref name="file"/> with its symbols global (Open MPI's plug-ins resolve libmpi's symbols
    /// through the global scope), or throws naming the library and how to get it.</summary>
    public static nint Load(string file, string remedy)
    {
        if (!OperatingSystem.IsLinux()) throw new CollectiveException($"{file}: the collective libraries are loaded on Linux only");
        DlError();   // binds the stub and clears any earlier error, so the one read below is dlopen's
        nint handle = DlOpen(file, RtldNow | RtldGlobal);
        if (handle == 0)
        {
            string reason = Marshal.PtrToStringUTF8(DlError()) ?? "not found";
            throw new CollectiveException($"{file} could not be loaded ({reason}); {remedy}");
        }
        return handle;
    }

    public static nint Symbol(nint library, string file, string name) =>
        NativeLibrary.TryGetExport(library, name, out nint address) ? address
            : throw new CollectiveException($"{file} has no symbol {name}: not the expected library version");
}
