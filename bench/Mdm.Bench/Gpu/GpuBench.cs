using System.Text.Json;
using Mdm.Kernels;
using Mdm.Kernels.Gpu;

namespace Mdm.Bench.Gpu;

/// <summary>
/// Times ILGPU kernels with device events (ILGPU profiling markers = CUDA events) after a warm-up, and reports
/// GB/s from the bytes each op must move. The shapes match scripts/gpu/torch_bench.py, so compare.py can pair them.
/// </summary>
public static class GpuBench
{
    public sealed record Result(string op, string shape, double ms, double bytes, double flops, double gbps, double tflops, string card, string impl);

    public static int Run(string[] args)
    {
        string device = "cuda", json = "";
        bool quick = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--device" when i + 1 < args.Length: device = args[++i]; break;
                case "--json" when i + 1 < args.Length: json = args[++i]; break;
                case "--quick": quick = true; break;
                default: Console.Error.WriteLine($"gpu bench: unknown argument '{args[i]}' (use --device, --json, --quick)"); return 2;
            }
        }
        Backend backend;
        try { backend = Backends.Create(Backends.Parse(device)); }
        catch (Exception e) { Console.Error.WriteLine($"gpu bench: cannot start '{device}': {e.Message}"); return 1; }
        if (backend is not IlgpuBackend ilgpu) { Console.Error.WriteLine("gpu bench: needs an ILGPU backend (cuda or ilgpu-cpu)"); return 2; }

        using (backend)
        {
            var results = new List<Result>();
            foreach (var c in BenchCases.All(quick))
            {
                var r = Time(ilgpu, c, quick ? 1 : 5, quick ? 2 : 50);
                results.Add(r);
                Console.WriteLine($"{r.op,-14} {r.shape,-18} {r.ms,9:F4} ms  {r.gbps,8:F1} GB/s   [{r.card}]");
            }
            if (json.Length > 0)
            {
                File.WriteAllLines(json, results.Select(r => JsonSerializer.Serialize(r)));
                Console.WriteLine($"wrote {results.Count} results to {json}");
            }
        }
        return 0;
    }

    static Result Time(IlgpuBackend b, BenchCase c, int warmup, int reps)
    {
        using var state = c.Setup(b);
        double ms = DeviceTimer.MeanMs(b, () => c.Run(state), warmup, reps);
        return new Result(c.Op, c.ShapeText, ms, c.Bytes, c.Flops, c.Bytes / (ms * 1e6), c.Flops / (ms * 1e9), b.Info.Name, "mdm");
    }
}
