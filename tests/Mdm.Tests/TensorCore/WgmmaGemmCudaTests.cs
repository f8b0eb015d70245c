using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Tests.Harness;
using Mdm.Tests.Kernels;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// On an sm_90 GPU: bf16 MatMul forward and both gradients with <see cref="IlgpuBackend.UseWgmmaGemm"/> on run on the
/// wgmma kernel (loaded through the sm_90a patch) and pass <see cref="MatmulOpTests.MatMulBF16"/>'s checks; fails if
/// they did not take that route. Other GPUs do not offer the kernel: the test says so and is skipped.
/// </summary>
[BackendFixtures(BackendKind.Cuda)]
public class MatmulWgmmaTests_Cuda() : MatmulOpTests(BackendKind.Cuda)
{
    /// <summary>Off the 64×64 tile and the 64-deep slice, unaligned rows (the kernel loads elements), every form,
    /// batched, broadcast and summed (the weight gradient of a broadcast operand).</summary>
    public static IEnumerable<TestCaseData> WgmmaCases()
    {
        foreach (var (ta, tb, name) in new[] { (false, false, "NN"), (false, true, "NT"), (true, false, "TN"), (true, true, "TT") })
        {
            yield return new TestCaseData(0, 0, 200, 136, 72, ta, tb).SetArgDisplayNames($"200x136x72 {name}");
            yield return new TestCaseData(3, 0, 77, 45, 131, ta, tb).SetArgDisplayNames($"[3,77,131]x[131,45] {name}");
        }
        yield return new TestCaseData(2, 2, 256, 128, 512, false, true).SetArgDisplayNames("[2,256,512]x[2,128,512] NT");
    }

    [TestCaseSource(nameof(WgmmaCases))]
    public void MatMulBF16OnWgmma(int batchA, int batchB, int m, int n, int k, bool ta, bool tb)
    {
        var gpu = (IlgpuBackend)B;
        if (gpu.GpuArchitecture != "sm_90") Assert.Ignore($"wgmma needs sm_90; this GPU is {gpu.GpuArchitecture}");
        gpu.UseWgmmaGemm = true;
        try
        {
            long before = gpu.WgmmaGemms;
            MatMulBF16(batchA, batchB, m, n, k, ta, tb);
            Assert.That(gpu.WgmmaGemms - before, Is.GreaterThanOrEqualTo(3), "forward, da and db should all have run on the wgmma kernel");
        }
        finally { gpu.UseWgmmaGemm = null; }
    }
}
