using Mdm.Kernels.Cpu;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Kernels;

/// <summary>The CPU backend's shared GEMM, all transpose forms, alpha/beta and batching, against float64, with the
/// 256-bit kernel and (where the CPU has AVX-512) the 512-bit one.</summary>
public class CpuGemmTests
{
    [TestCase(false, false, 9, 13, 7)]
    [TestCase(false, true, 113, 17, 64)]
    [TestCase(true, false, 5, 33, 19)]
    [TestCase(true, true, 16, 9, 31)]
    [TestCase(false, false, 1, 1, 1)]
    [TestCase(false, false, 70, 301, 45)]
    [TestCase(false, true, 37, 290, 300)]
    [TestCase(true, false, 9, 97, 600)]
    [TestCase(true, true, 66, 33, 257)]
    [TestCase(false, false, 24, 304, 40)]
    [TestCase(false, false, 64, 8, 64)]     // attention's head dimension 8: the 8×8 remainder kernel alone
    [TestCase(false, true, 17, 24, 9)]      // 8×16 then 8×8, a leftover row
    public unsafe void SgemmMatchesReference(bool ta, bool tb, int m, int n, int k)
    {
        var rng = TestSeed.NewRandom();
        int batch = 3;
        var a = TestSeed.Uniform(rng, batch * m * k);
        var b = TestSeed.Uniform(rng, batch * k * n);
        var c0 = TestSeed.Uniform(rng, batch * m * n);
        var c = (float[])c0.Clone();
        var expected = new double[c.Length];
        var scale = new double[c.Length];
        const float alpha = 0.75f, beta = -0.5f;
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0, sa = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double av = ta ? a[bi * m * k + p * m + i] : a[bi * m * k + i * k + p];
                        double bv = tb ? b[bi * k * n + j * k + p] : b[bi * k * n + p * n + j];
                        s += av * bv; sa += Math.Abs(av * bv);
                    }
                    int o = bi * m * n + i * n + j;
                    expected[o] = alpha * s + beta * (double)c0[o];
                    scale[o] = Math.Abs(alpha) * sa + Math.Abs(beta * c0[o]);
                }
        bool saved = CpuGemm.UseVector512;
        try
        {
            foreach (bool wide in System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? new[] { false, true } : [false])
            {
                CpuGemm.UseVector512 = wide;
                c0.CopyTo(c, 0);
                fixed (float* pa = a, pb = b, pc = c)
                    CpuGemm.SgemmBatched(batch, ta, tb, m, n, k, pa, ta ? m : k, m * k, pb, tb ? k : n, k * n, pc, n, m * n, alpha, beta);
                Compare.AssertClose($"Sgemm ta={ta} tb={tb} {m}x{n}x{k} {(wide ? "512" : "256")}-bit", c, expected, new Tolerance(1e-6, 1e-5 + 1e-7 * Math.Sqrt(k)), scale);
            }
        }
        finally { CpuGemm.UseVector512 = saved; }
    }

    /// <summary>The packed path (B's rows at least PackMinRowStride apart) against float64 and against the path that reads
    /// B in place: leftover rows past the 8-row blocks, a column tail past the 32-wide panels, K in unequal chunks, a
    /// widened panel (576 columns of a wider B), both kernels, a NaN-poisoned C with beta = 0.</summary>
    [TestCase(19, 4133, 301, 4133)]
    [TestCase(19, 576, 301, CpuGemm.PackMinRowStride + 3)]
    [TestCase(64, 4096, 64, 4096)]
    [TestCase(3, 4101, 7, 4101)]
    public unsafe void PackedSgemmMatchesReference(int m, int n, int k, int ldb)
    {
        var rng = TestSeed.NewRandom();
        const int batch = 2;
        const float alpha = 1.25f;
        var a = TestSeed.Uniform(rng, batch * m * k);
        var b = TestSeed.Uniform(rng, batch * k * ldb);
        var expected = new double[batch * m * n];
        var scale = new double[expected.Length];
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++)
                {
                    double av = a[(bi * m + i) * k + p];
                    for (int j = 0; j < n; j++)
                    {
                        double prod = av * b[((long)bi * k + p) * ldb + j];
                        expected[(bi * m + i) * n + j] += alpha * prod;
                        scale[(bi * m + i) * n + j] += Math.Abs(alpha * prod);
                    }
                }
        bool savedWide = CpuGemm.UseVector512, savedPack = CpuGemm.PackOperands;
        try
        {
            foreach (bool wide in System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? new[] { false, true } : [false])
                foreach (bool pack in new[] { true, false })
                {
                    CpuGemm.UseVector512 = wide;
                    CpuGemm.PackOperands = pack;
                    var c = new float[expected.Length];
                    Array.Fill(c, float.NaN);
                    fixed (float* pa = a, pb = b, pc = c)
                        CpuGemm.SgemmBatched(batch, false, false, m, n, k, pa, k, (long)m * k, pb, ldb, (long)k * ldb, pc, n, (long)m * n, alpha, 0f);
                    Compare.AssertClose($"Sgemm {m}x{n}x{k} ldb={ldb} {(wide ? "512" : "256")}-bit {(pack ? "packed" : "in place")}", c, expected,
                        new Tolerance(1e-6, 1e-5 + 1e-7 * Math.Sqrt(k)), scale);
                }
        }
        finally { CpuGemm.UseVector512 = savedWide; CpuGemm.PackOperands = savedPack; }
    }

    /// <summary>C += A·Bᵀ with both operands read along rows (the convolution weight gradient): 4×4 blocks, leftover
    /// rows and columns, k below, at and past a multiple of 16.</summary>
    [TestCase(4, 4, 16)]
    [TestCase(9, 13, 81)]
    [TestCase(16, 144, 1024)]
    [TestCase(5, 3, 7)]
    [TestCase(1, 1, 1)]
    [TestCase(32, 27, 25)]
    public unsafe void AccumulateRowDotsMatchesReference(int m, int n, int k)
    {
        var rng = TestSeed.NewRandom();
        int lda = k + 3, ldb = k + 5, ldc = n + 2;   // padded rows: the kernel must not read or write past k or n
        var a = TestSeed.Uniform(rng, m * lda);
        var b = TestSeed.Uniform(rng, n * ldb);
        var c0 = TestSeed.Uniform(rng, m * ldc);
        var expected = new double[c0.Length];
        var scale = new double[c0.Length];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++)
            {
                int o = i * ldc + j;
                double s = c0[o], sa = Math.Abs(c0[o]);
                if (j < n)
                    for (int p = 0; p < k; p++) { double t = (double)a[i * lda + p] * b[j * ldb + p]; s += t; sa += Math.Abs(t); }
                expected[o] = s; scale[o] = sa;
            }
        bool saved = CpuGemm.UseVector512;
        try
        {
            foreach (bool wide in System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? new[] { false, true } : [false])
            {
                CpuGemm.UseVector512 = wide;
                var c = (float[])c0.Clone();
                fixed (float* pa = a, pb = b, pc = c) CpuGemm.AccumulateRowDots(m, n, k, pa, lda, pb, ldb, pc, ldc);
                Compare.AssertClose($"AccumulateRowDots {m}x{n}x{k} {(wide ? "512" : "256")}-bit", c, expected, new Tolerance(1e-6, 1e-5 + 1e-7 * Math.Sqrt(k)), scale);
            }
        }
        finally { CpuGemm.UseVector512 = saved; }
    }
}
