using Mdm.Kernels;
using Mdm.Kernels.Gpu;

namespace Mdm.Tests.Harness;

/// <summary>One backend per kind per test run: ILGPU contexts are expensive, and each compiles all its kernels once.</summary>
public static class TestBackends
{
    static readonly Dictionary<BackendKind, Lazy<Backend>> backends = new()
    {
        [BackendKind.Cpu] = new(() => Backends.Create(BackendKind.Cpu)),
        [BackendKind.IlgpuCpu] = new(() => Backends.Create(BackendKind.IlgpuCpu)),
        [BackendKind.Cuda] = new(() => Backends.Create(BackendKind.Cuda)),
    };

    public static Backend Get(BackendKind kind)
    {
        if (kind == BackendKind.Cuda)
        {
            var (ok, reason) = Backends.CudaStatus();
            if (!ok) Assert.Ignore($"Gpu test skipped: {reason}");
        }
        return backends[kind].Value;
    }
}

/// <summary>
/// Base of every per-op fixture: an abstract fixture holds the tests, and one subclass per backend runs them
/// (`..._Cpu`, `..._IlgpuCpu`, and `..._Cuda` in the Gpu category, skipped with the reason when no GPU is present).
/// </summary>
public abstract class KernelFixture
{
    protected KernelFixture(BackendKind kind) { Kind = kind; }
    protected BackendKind Kind { get; }
    protected Backend B { get; private set; } = null!;
    protected Random Rng { get; private set; } = null!;

    [OneTimeSetUp] public void GetBackend() => B = TestBackends.Get(Kind);
    [SetUp] public void FreshSeed() => Rng = TestSeed.NewRandom();

    /// <summary>An output filled with NaN, so any element a kernel fails to write shows up in the comparison.</summary>
    protected Tensor Poisoned(params int[] shape) => B.Full(float.NaN, shape);

    /// <summary>A BF16 output filled with NaN bits, so an unwritten element fails the comparison.</summary>
    protected Tensor PoisonedBF16(params int[] shape)
    {
        var t = B.Empty(DType.BF16, shape);
        t.CopyFrom(Enumerable.Repeat(BFloat16.FromFloat(float.NaN), (int)Shape.Numel(shape)).ToArray());
        return t;
    }

    protected Tensor Upload(float[] data, params int[] shape) => B.FromArray(data, shape);

    /// <summary>Random inputs, as the float values uploaded and the same values widened for the reference.</summary>
    protected (Tensor t, double[] r) Input(params int[] shape)
    {
        var f = TestSeed.Uniform(Rng, Shape.Numel(shape));
        return (B.FromArray(f, shape), TestSeed.ToDouble(f));
    }

    /// <summary>A BF16 tensor holding x rounded to nearest even, and the rounded values as doubles.</summary>
    protected (Tensor t, double[] r) BF16Of(float[] x, int[] shape)
    {
        var bits = new ushort[x.Length];
        BFloat16.FromFloat(x, bits);
        var t = B.Empty(DType.BF16, shape);
        t.CopyFrom(bits);
        return (t, Array.ConvertAll(bits, v => (double)BFloat16.ToFloat(v)));
    }

    /// <summary>Random BF16 inputs (rounded to nearest even) and the rounded values as doubles.</summary>
    protected (Tensor t, double[] r) BF16Input(params int[] shape) => BF16Of(TestSeed.Uniform(Rng, Shape.Numel(shape)), shape);

    protected string Name(string op, params int[][] shapes) =>
        $"{op} {string.Join(" ", shapes.Select(s => Shape.Format(s)))} on {Backends.KindName(Kind)}";
}
