using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// The Hopper bf16 GEMM (WgmmaGemmKernels): loaded through the sm_90a patch on compute capability 9.0 only, compiled
// (not launchable) on the CPU accelerator so the catalogue stays whole, and not offered anywhere else.
public sealed partial class IlgpuBackend
{
    /// <summary>The wgmma GEMMs, indexed by TransA·2 + TransB.</summary>
    static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs>[] MatmulWgmma =
        WgmmaNames.Select(n => (Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs>)KernelCatalog.All.Single(k => k.Name == n).Kernel).ToArray();

    static string[] WgmmaNames => [nameof(KernelCatalog.MatmulBF16WgmmaNN), nameof(KernelCatalog.MatmulBF16WgmmaNT),
                                   nameof(KernelCatalog.MatmulBF16WgmmaTN), nameof(KernelCatalog.MatmulBF16WgmmaTT)];

    /// <summary>Whether bf16 GEMMs with an f32 C take the wgmma kernel where it is loaded (sm_90): true, false, or by
    /// shape (null, the default: <see cref="GemmAlgorithm"/>, else the tuning table's "wgmma" entries; none until a GPU
    /// run picks it).</summary>
    public bool? UseWgmmaGemm { get; set; }

    long wgmmaGemms;

    /// <summary>How many GEMMs ran on the wgmma kernel (they count in <see cref="TensorCoreGemms"/> too).</summary>
    public long WgmmaGemms => Interlocked.Read(ref wgmmaGemms);

    partial void LoadWgmmaKernels(Loader loader)
    {
        var names = WgmmaNames;
        for (int i = 0; i < names.Length; i++)
        {
            var kernel = MatmulWgmma[i];
            if (Kind != BackendKind.Cuda) loader.Load(names[i], () => MakeLauncher(kernel));
            else if (GpuArchitecture == "sm_90")
                launchers[kernel.Method] = loader.Load(names[i], () =>
                    LauncherOf(kernel, LoadPromoted(kernel, KernelCatalog.Budget(names[i]).Specialization, WgmmaGemmKernels.SharedBytes, sm90a: true)));
        }
    }

    /// <summary>The wgmma path, when <paramref name="wanted"/> (UseWgmmaGemm, else the GEMM variant) and loaded: any
    /// transpose form and alignment (its copy loads elements); f32 C only (a bf16 C takes the mma.sync kernel's epilogue).</summary>
    bool TryWgmmaGemm(Tensor a, Tensor b, Tensor c, Tensor? bias, in MatmulDesc d, bool rowBias, bool wanted)
    {
        var kernel = MatmulWgmma[(d.TransA ? 2 : 0) + (d.TransB ? 1 : 0)];
        if (!wanted || c.DType != DType.F32 || !Launchable(kernel)) return false;
        if (d.OutBatch > 65535 || a.Numel >= int.MaxValue || b.Numel >= int.MaxValue || (long)d.OutBatch * d.StrideC >= int.MaxValue) return false;
        int tilesM = (d.M + WgmmaGemmKernels.TileM - 1) / WgmmaGemmKernels.TileM, tilesN = (d.N + WgmmaGemmKernels.TileN - 1) / WgmmaGemmKernels.TileN;
        if ((long)tilesM * tilesN > int.MaxValue) return false;
        if ((long)tilesM * tilesN == 0) return true;
        var p = new WgmmaGemmArgs
        {
            M = d.M, N = d.N, K = d.K, Lda = d.Lda, Ldb = d.Ldb, Ldc = d.Ldc,
            StrideA = (int)d.StrideA, StrideB = (int)d.StrideB, StrideC = (int)d.StrideC,
            Batch = d.Batch, SumBatch = d.SumBatch ? 1 : 0, HasBias = bias is null ? 0 : rowBias ? 2 : 1,
            TilesN = tilesN, KTiles = (d.K + WgmmaGemmKernels.TileK - 1) / WgmmaGemmKernels.TileK,
        };
        var cfg = new KernelConfig(new Index2D(tilesM * tilesN, d.OutBatch), new Index2D(WgmmaGemmKernels.Threads, 1),
            SharedMemoryConfig.RequestDynamic<byte>(WgmmaGemmKernels.SharedBytes));
        LaunchLog.CountFlops(2.0 * d.Batch * d.M * d.N * d.K);
        Run(kernel, cfg, U16(a), U16(b), F32(c), bias is null ? Unread(c) : F32(bias), p);
        Interlocked.Increment(ref wgmmaGemms);
        Interlocked.Increment(ref tensorCoreGemms);
        return true;
    }
}
