using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> matmulF32 = null!;
    Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, GemmArgs> matmulBF16 = null!;

    partial void LoadMatmulKernels(Loader loader)
    {
        var a = accelerator;
        matmulF32 = loader.Load(nameof(KernelCatalog.MatmulF32), () => a.LoadStreamKernel(KernelCatalog.MatmulF32));
        matmulBF16 = loader.Load(nameof(KernelCatalog.MatmulBF16), () => a.LoadStreamKernel(KernelCatalog.MatmulBF16));
    }

    protected internal override void Gemm(Tensor a, Tensor b, Tensor c, Tensor? bias, in MatmulDesc d)
    {
        var p = new GemmArgs
        {
            Batch = d.Batch, M = d.M, N = d.N, K = d.K, Lda = d.Lda, Ldb = d.Ldb, Ldc = d.Ldc,
            StrideA = (int)d.StrideA, StrideB = (int)d.StrideB, StrideC = (int)d.StrideC,
            TransA = d.TransA ? 1 : 0, TransB = d.TransB ? 1 : 0, SumBatch = d.SumBatch ? 1 : 0, HasBias = bias is null ? 0 : 1,
            TilesM = (d.M + MatmulKernels.TileM - 1) / MatmulKernels.TileM,
            TilesN = (d.N + MatmulKernels.TileN - 1) / MatmulKernels.TileN,
        };
        long tiles = (long)p.TilesM * p.TilesN * d.OutBatch;
        if (tiles == 0) return;
        // Grid-stride over tiles: on CUDA one group per tile up to 65535 groups; on the CPU accelerator a couple of groups.
        long cap = Kind == BackendKind.Cuda ? 65535 : maxGroups;
        var cfg = new KernelConfig((int)Math.Min(tiles, cap), MatmulKernels.Threads);
        var biasView = bias is null ? F32(c) : F32(bias);   // unread when HasBias = 0
        if (a.DType == DType.BF16) matmulBF16(cfg, U16(a), U16(b), F32(c), biasView, p);
        else matmulF32(cfg, F32(a), F32(b), F32(c), biasView, p);
    }
}
