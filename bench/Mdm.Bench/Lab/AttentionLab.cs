using Mdm.Bench.Gpu;
using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu;

namespace Mdm.Bench.Lab;

/// <summary>
/// Kernel lab: attention forward on the GPU, versions side by side, each checked and timed with device events.
///   v1  the promoted SIMT flash kernel (src AttentionKernels via Ops.Attention; f32 FMA), on the bf16-rounded inputs
///   v2  tensor cores, head dimension 64, no mask (Lab/AttentionTensorCoreV2.cs) — not promoted, never run on a GPU yet
/// run (CUDA): dotnet run -c Release --project bench/Mdm.Bench -- lab attention
///      (offline): ... -- lab attention --ptx DIR     writes v2's PTX (depots promoted) for ptxas -arch=sm_90 -v
/// Check: v2 against v1 on the same bf16 values, max |ΔO| / max |O| and max |Δlse|. FLOPs 4·B·H·N²·D.
/// </summary>
public static class AttentionLab
{
    public static int Run(string[] args)
    {
        if (args.Length == 2 && args[0] == "--ptx")
        {
            Directory.CreateDirectory(args[1]);
            var ptx = PtxCompiler.Compile((Action<ArrayView<float>, ArrayView<float>, AttentionLabArgs>)AttentionTensorCoreV2.Forward,
                KernelSpecialization.Empty, promoteDepots: true);
            File.WriteAllText(Path.Combine(args[1], "AttentionTensorCoreV2.ptx"), ptx);
            Console.WriteLine($"wrote {Path.Combine(args[1], "AttentionTensorCoreV2.ptx")} ({ptx.Length} chars)");
            return 0;
        }
        var (ok, reason) = Backends.CudaStatus();
        if (!ok) { Console.Error.WriteLine($"lab attention: needs CUDA ({reason}); use --ptx DIR offline"); return 2; }
        using var b = (IlgpuBackend)Backends.Create(BackendKind.Cuda);
        var v2 = b.LoadWithPromotedDepots<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, AttentionLabArgs>>(
            (Action<ArrayView<float>, ArrayView<float>, AttentionLabArgs>)AttentionTensorCoreV2.Forward, KernelSpecialization.Empty, AttentionTensorCoreV2.SharedBytes);
        Console.WriteLine($"{b.Info}");
        Console.WriteLine("shape [B,H,N,D]       v1 ms     v2 ms   v2 TFLOP/s   max|dO|/max|O|   max|dlse|");
        foreach (var (batch, heads, n) in new[] { (1, 2, 113), (2, 8, 256), (16, 8, 1024) })
        {
            int[] shape = [batch, heads, n, AttentionTensorCoreV2.D];
            using var qf = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(shape), 11));
            using var kf = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(shape), 12));
            using var vf = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(shape), 13));
            using var q = Ops.ToBF16(qf);
            using var k = Ops.ToBF16(kf);
            using var v = Ops.ToBF16(vf);
            using var o1 = b.Empty(shape);
            using var lse1 = b.Empty(batch, heads, n);
            using var o2 = b.Full(float.NaN, shape);
            using var lse2 = b.Full(float.NaN, batch, heads, n);
            var args2 = new AttentionLabArgs
            {
                Q = IlgpuBackend.DeviceAddress(q), K = IlgpuBackend.DeviceAddress(k), V = IlgpuBackend.DeviceAddress(v),
                N = n, ScaleLog2 = (float)(1.0 / Math.Log(2) / Math.Sqrt(AttentionTensorCoreV2.D)),
            };
            var cfg = new KernelConfig(new Index2D((n + AttentionTensorCoreV2.BlockQ - 1) / AttentionTensorCoreV2.BlockQ, batch * heads),
                new Index2D(AttentionTensorCoreV2.Threads, 1), SharedMemoryConfig.RequestDynamic<byte>(AttentionTensorCoreV2.SharedBytes));
            void RunV1() => Ops.Attention(qf, kf, vf, null, o1, lse1);
            void RunV2() => v2(b.Accelerator.DefaultStream, cfg, IlgpuBackend.View(o2), IlgpuBackend.View(lse2), args2);
            RunV1(); RunV2(); b.Synchronize();
            var (a1, a2) = (o1.ToArray(), o2.ToArray());
            double maxO = a1.Max(x => Math.Abs((double)x)), dO = 0, dL = 0;
            for (int i = 0; i < a1.Length; i++) dO = Math.Max(dO, double.IsNaN(a2[i]) ? double.PositiveInfinity : Math.Abs(a1[i] - a2[i]));
            var (l1, l2) = (lse1.ToArray(), lse2.ToArray());
            for (int i = 0; i < l1.Length; i++) dL = Math.Max(dL, double.IsNaN(l2[i]) ? double.PositiveInfinity : Math.Abs(l1[i] - l2[i]));
            double t1 = DeviceTimer.MeanMs(b, RunV1, 3, 20), t2 = DeviceTimer.MeanMs(b, RunV2, 3, 20), flops = 4.0 * batch * heads * (double)n * n * AttentionTensorCoreV2.D;
            Console.WriteLine($"[{batch},{heads},{n},64]".PadRight(20) + $"{t1,8:F4}  {t2,8:F4}  {flops / (t2 * 1e9),10:F1}   {dO / maxO,14:G3}   {dL,9:G3}");
        }
        return 0;
    }
}
