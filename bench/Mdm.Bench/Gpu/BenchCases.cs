using Mdm.Kernels;

namespace Mdm.Bench.Gpu;

/// <summary>Tensors a case needs, disposed together.</summary>
public sealed class BenchState(params Tensor[] tensors) : IDisposable
{
    public Tensor this[int i] => tensors[i];
    public void Dispose() { foreach (var t in tensors) t.Dispose(); }
}

/// <summary>One benchmark: op name, shape, the bytes it must move (for GB/s) and flops (for TFLOP/s).</summary>
public sealed record BenchCase(string Op, int[] Shape, double Bytes, double Flops, Func<Backend, BenchState> Setup, Action<BenchState> Run)
{
    public string ShapeText => string.Join("x", Shape);
}

/// <summary>
/// The shared case list. Keep in step with scripts/gpu/torch_bench.py (same op names and shapes).
/// Bytes: elementwise = (inputs read + outputs written)·4; the copy is the device-to-device bandwidth yardstick.
/// </summary>
public static class BenchCases
{
    public static IEnumerable<BenchCase> All(bool quick)
    {
        int[] act = quick ? [2, 8, 9, 9] : [16, 256, 64, 64];       // a 64² UNet activation at batch 16
        int[] rows = quick ? [7, 113] : [4096, 4096];
        long n = Kernels.Shape.Numel(act), nr = Kernels.Shape.Numel(rows);

        Tensor R(Backend b, int[] s, ulong seed) => Ops.RandomNormal(b.Empty(s), seed);

        yield return new("copy", act, 8.0 * n, 0, b => new(R(b, act, 1), b.Empty(act)), s => Ops.Copy(s[0], s[1]));
        yield return new("add", act, 12.0 * n, n, b => new(R(b, act, 1), R(b, act, 2), b.Empty(act)), s => Ops.Add(s[0], s[1], s[2]));
        int[] biasShape = [1, act[1], 1, 1];
        yield return new("add_bias", act, 8.0 * n, n, b => new(R(b, act, 1), R(b, biasShape, 2), b.Empty(act)), s => Ops.Add(s[0], s[1], s[2]));
        yield return new("mul", act, 12.0 * n, n, b => new(R(b, act, 1), R(b, act, 2), b.Empty(act)), s => Ops.Mul(s[0], s[1], s[2]));
        yield return new("silu_fwd", act, 8.0 * n, 4.0 * n, b => new(R(b, act, 1), b.Empty(act)), s => Ops.Silu(s[0], s[1]));
        yield return new("silu_bwd", act, 12.0 * n, 8.0 * n, b => new(R(b, act, 1), R(b, act, 2), b.Empty(act)), s => Ops.SiluBackward(s[0], s[1], s[2]));
        yield return new("sum_rows", rows, 4.0 * nr, nr, b => new(R(b, rows, 1), b.Empty(rows[0])), s => Ops.Sum(s[0], [1], false, s[1]));
        yield return new("sum_nhw", act, 4.0 * n, n, b => new(R(b, act, 1), b.Empty(act[1])), s => Ops.Sum(s[0], [0, 2, 3], false, s[1]));
    }
}
