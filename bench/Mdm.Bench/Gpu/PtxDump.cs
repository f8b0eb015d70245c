using System.Text.Json;
using Mdm.Kernels.Gpu;

namespace Mdm.Bench.Gpu;

/// <summary>Writes &lt;name&gt;.ptx for every kernel in KernelCatalog and manifest.json with their SASS budgets.</summary>
public static class PtxDump
{
    public static int Run(string[] args)
    {
        string outDir = args.Length == 2 && args[0] == "--out" ? args[1] : "";
        if (outDir.Length == 0) { Console.Error.WriteLine("usage: Mdm.Bench ptx --out DIR"); return 2; }
        Directory.CreateDirectory(outDir);
        var manifest = new List<object>();
        foreach (var r in PtxCompiler.CompileAll())
        {
            File.WriteAllText(Path.Combine(outDir, r.Name + ".ptx"), r.Ptx);
            var b = KernelCatalog.Budget(r.Name);
            manifest.Add(new { name = r.Name, entry = r.EntryName, maxRegisters = b.MaxRegisters, maxStackBytes = b.MaxStackBytes,
                maxSpillBytes = b.MaxSpillBytes, requireHmma = b.RequireHmma, requireLdsm = b.RequireLdsm,
                requireHgmma = b.RequireHgmma, arch = b.TargetSm90a ? "sm_90a" : "sm_90" });
        }
        File.WriteAllText(Path.Combine(outDir, "manifest.json"), JsonSerializer.Serialize(manifest, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {manifest.Count} kernels to {outDir}");
        return 0;
    }
}
