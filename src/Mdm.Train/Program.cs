using System.Diagnostics;
using Mdm.Kernels;

namespace Mdm.Train;

/// <summary>
/// The Mdm command line. At this stage it reports the devices, picks one (MDM_DEVICE or --device), and proves the
/// chosen backend works by running a few kernels against a host computation. train / sample / convert arrive with
/// the model and training issues.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string? device = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "info": break;
                case "--device" when i + 1 < args.Length: device = args[++i]; break;
                case "-h" or "--help": PrintUsage(); return 0;
                default:
                    Console.Error.WriteLine($"mdm: unknown argument '{args[i]}'");
                    PrintUsage();
                    return 2;
            }
        }

        if (device is not null && device != "auto")
        {
            try { Backends.Parse(device); }
            catch (ArgumentException e) { Console.Error.WriteLine($"mdm: {e.Message}"); return 2; }
        }

        Console.WriteLine("Mdm: Matryoshka Diffusion Models on hand-written kernels (ILGPU + System.Numerics.Tensors)");
        Console.WriteLine();
        Console.WriteLine("Devices:");
        Console.WriteLine($"  {Describe(BackendKind.Cpu)}");
        var (cudaOk, cudaWhy) = Backends.CudaStatus();
        Console.WriteLine(cudaOk ? $"  {Describe(BackendKind.Cuda)}" : $"  cuda      not available: {cudaWhy}");
        Console.WriteLine($"  ilgpu-cpu ILGPU CPU accelerator (runs the GPU kernels on the CPU; for tests, very slow)");
        Console.WriteLine();

        Backend backend;
        try { backend = Backends.CreateDefault(device); }
        catch (ArgumentException e) { Console.Error.WriteLine($"mdm: {e.Message}"); return 2; }
        catch (Exception e) { Console.Error.WriteLine($"mdm: could not start device '{device ?? "auto"}': {e.Message}"); return 1; }

        using (backend)
        {
            Console.WriteLine($"Selected: {backend.Info}");
            Console.WriteLine($"  (override with --device or {Backends.EnvironmentVariable}={string.Join("|", Backends.Names)})");
            int rc = SelfCheck(backend);
            Console.WriteLine();
            Console.WriteLine("Commands (arriving with the model and training work):");
            Console.WriteLine("  train    train a nested UNet (progressive stages) on a built-in or local image set");
            Console.WriteLine("  sample   sample images at every resolution from a checkpoint (DDPM/DDIM, CFG, thresholding)");
            Console.WriteLine("  info     devices, config and parameter count (this screen for now)");
            Console.WriteLine("  convert  an ml-mdm YAML config to Mdm JSON");
            return rc;
        }
    }

    static string Describe(BackendKind kind)
    {
        try { using var b = Backends.Create(kind); return b.Info.ToString(); }
        catch (Exception e) { return $"{Backends.KindName(kind),-9} failed to start: {e.Message}"; }
    }

    /// <summary>SiLU, a broadcast add and a sum on the device, checked against the same maths on the host.</summary>
    static int SelfCheck(Backend b)
    {
        var sw = Stopwatch.StartNew();
        const int rows = 64, cols = 1000;
        using var x = b.Empty(rows, cols);
        Ops.RandomNormal(x, seed: 1234);
        using var bias = b.Full(0.5f, cols);
        using var y = Ops.Silu(x);
        using var z = Ops.Add(y, bias);
        using var s = Ops.Sum(z, [1]);
        var hx = x.ToArray();
        var got = s.ToArray();
        double worst = 0;
        for (int r = 0; r < rows; r++)
        {
            double acc = 0;
            for (int c = 0; c < cols; c++) { double v = hx[r * cols + c]; acc += v / (1 + Math.Exp(-v)) + 0.5; }
            worst = Math.Max(worst, Math.Abs(acc - got[r]) / Math.Max(1, Math.Abs(acc)));
        }
        bool ok = worst < 1e-4;
        Console.WriteLine($"Self-check on {b.Info.KindName}: SiLU + broadcast add + row sum of {rows}x{cols}: " +
                          $"{(ok ? "ok" : "FAILED")} (max rel error {worst:G2}, {sw.ElapsedMilliseconds} ms incl. kernel load)");
        return ok ? 0 : 1;
    }

    static void PrintUsage()
    {
        Console.WriteLine("usage: dotnet run --project src/Mdm.Train [info] [--device cpu|cuda|ilgpu-cpu]");
    }
}
