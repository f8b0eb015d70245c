using Mdm.Bench.Gpu;
using Mdm.Kernels;
using Mdm.Kernels.Gpu;

namespace Mdm.Bench.Lab;

/// <summary>
/// Kernel lab: the attention op's forward and backward on CUDA, both kernel sets side by side, checked and timed with
/// device events.
///   v1  the SIMT flash kernel (src AttentionKernels; f32 FMA), the default
///   v2  tensor cores (src TensorCore/AttentionTensorCoreKernels and AttentionBackwardTensorCoreKernels,
///       IlgpuBackend.UseTensorCoreAttention; the time includes rounding q, k, v (and dO) to bf16), checked on the CPU
///       accelerator through the emulation, never run on a GPU yet
/// run (CUDA): dotnet run -c Release --project bench/Mdm.Bench -- lab attention
/// Check: v2 against v1 on the same bf16-rounded values, max |ΔO| / max |O| and max |Δlse| (finite rows), per head
/// dimension, with and without a key mask that hides every key of the last batch; backward: max |Δ| / max |v1| over dq,
/// dk, dv. FLOPs 4·B·H·Nq·Nk·D forward, 10·B·H·Nq·Nk·D backward (with the recomputed S and dP).
/// Exit code 1 when v2 disagrees with v1 by more than 2e-2 relative in O or the gradients, or 2e-2 in lse.
/// </summary>
public static class AttentionLab
{
    public static int Run(string[] args)
    {
        var (ok, reason) = Backends.CudaStatus();
        if (!ok) { Console.Error.WriteLine($"lab attention: needs CUDA ({reason})"); return 2; }
        using var b = (IlgpuBackend)Backends.Create(BackendKind.Cuda);
        Console.WriteLine($"{b.Info}");
        Console.WriteLine("shape [B,H,Nq,Nk,D] mask   fwd v1 ms  v2 ms  v2 TFLOP/s  max|dO|/max|O|  max|dlse|   bwd v1 ms  v2 ms  v2 TFLOP/s  max|dgrad|/max|grad|");
        bool agree = true;
        foreach (var (batch, heads, nq, nk, d, masked) in new[]
                 {
                     (2, 2, 113, 113, 32, false), (2, 2, 70, 45, 64, true), (2, 2, 90, 77, 96, true), (2, 2, 100, 130, 128, true),
                     (16, 8, 1024, 1024, 64, false), (16, 8, 256, 256, 96, false), (16, 8, 256, 256, 128, false), (16, 8, 1024, 1024, 32, false),
                 })
        {
            using var q = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(batch, heads, nq, d), 11));
            using var k = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(batch, heads, nk, d), 12));
            using var v = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(batch, heads, nk, d), 13));
            var maskValues = new float[batch * nk];
            for (int i = 0; i < maskValues.Length; i++) maskValues[i] = i / nk == batch - 1 ? 0f : i % 3 == 2 ? 0f : 1f;
            using var mask = masked ? b.FromArray(maskValues, batch, nk) : null;
            using var o1 = b.Empty(batch, heads, nq, d);
            using var lse1 = b.Empty(batch, heads, nq);
            using var o2 = b.Full(float.NaN, batch, heads, nq, d);
            using var lse2 = b.Full(float.NaN, batch, heads, nq);
            void RunV1() { b.UseTensorCoreAttention = false; Ops.Attention(q, k, v, mask, o1, lse1); }
            void RunV2() { b.UseTensorCoreAttention = true; Ops.Attention(q, k, v, mask, o2, lse2); b.UseTensorCoreAttention = false; }
            long before = b.TensorCoreAttentions;
            RunV1(); RunV2(); b.Synchronize();
            if (b.TensorCoreAttentions == before) { Console.Error.WriteLine($"lab attention: D {d} did not take the tensor-core path"); return 1; }
            var (a1, a2) = (o1.ToArray(), o2.ToArray());
            double maxO = a1.Max(x => Math.Abs((double)x)), dO = 0, dL = 0;
            for (int i = 0; i < a1.Length; i++) dO = Math.Max(dO, double.IsNaN(a2[i]) ? double.PositiveInfinity : Math.Abs(a1[i] - a2[i]));
            var (l1, l2) = (lse1.ToArray(), lse2.ToArray());
            for (int i = 0; i < l1.Length; i++)
                dL = Math.Max(dL, l1[i] == l2[i] ? 0 : double.IsNaN(l2[i]) || float.IsInfinity(l1[i]) || float.IsInfinity(l2[i]) ? double.PositiveInfinity : Math.Abs(l1[i] - l2[i]));
            double t1 = DeviceTimer.MeanMs(b, RunV1, 3, 20), t2 = DeviceTimer.MeanMs(b, RunV2, 3, 20);
            double flops = 4.0 * batch * heads * (double)nq * nk * d;

            using var gradO = Ops.RoundToBF16(Ops.RandomNormal(b.Empty(batch, heads, nq, d), 14));
            using var dq1 = b.Empty(batch, heads, nq, d);
            using var dk1 = b.Empty(batch, heads, nk, d);
            using var dv1 = b.Empty(batch, heads, nk, d);
            using var dq2 = b.Full(float.NaN, batch, heads, nq, d);
            using var dk2 = b.Full(float.NaN, batch, heads, nk, d);
            using var dv2 = b.Full(float.NaN, batch, heads, nk, d);
            void BackV1() { b.UseTensorCoreAttention = false; Ops.AttentionBackward(q, k, v, o1, lse1, gradO, mask, dq1, dk1, dv1); }
            void BackV2() { b.UseTensorCoreAttention = true; Ops.AttentionBackward(q, k, v, o2, lse2, gradO, mask, dq2, dk2, dv2); b.UseTensorCoreAttention = false; }
            BackV1(); BackV2(); b.Synchronize();
            double dGrad = Math.Max(RelativeDifference(dq1, dq2), Math.Max(RelativeDifference(dk1, dk2), RelativeDifference(dv1, dv2)));
            double b1 = DeviceTimer.MeanMs(b, BackV1, 2, 10), b2 = DeviceTimer.MeanMs(b, BackV2, 2, 10);
            agree &= dO / maxO <= 2e-2 && dL <= 2e-2 && dGrad <= 2e-2;
            Console.WriteLine($"[{batch},{heads},{nq},{nk},{d}]".PadRight(21) + $"{(masked ? "yes" : "no"),-5}{t1,9:F4} {t2,7:F4} {flops / (t2 * 1e9),10:F1}  {dO / maxO,14:G3}  {dL,9:G3}" +
                              $"   {b1,9:F4} {b2,7:F4} {2.5 * flops / (b2 * 1e9),10:F1}  {dGrad,10:G3}");
        }
        Console.WriteLine(agree ? "v2 agrees with v1 on every shape" : "v2 DISAGREES with v1 (see above)");
        return agree ? 0 : 1;
    }

    /// <summary>max |a − b| / max |a|; ∞ when b has a NaN (an element v2 did not write).</summary>
    static double RelativeDifference(Tensor a, Tensor b)
    {
        var (x, y) = (a.ToArray(), b.ToArray());
        double max = 1e-30, diff = 0;
        for (int i = 0; i < x.Length; i++)
        {
            max = Math.Max(max, Math.Abs((double)x[i]));
            diff = Math.Max(diff, float.IsNaN(y[i]) ? double.PositiveInfinity : Math.Abs((double)x[i] - y[i]));
        }
        return diff / max;
    }
}
