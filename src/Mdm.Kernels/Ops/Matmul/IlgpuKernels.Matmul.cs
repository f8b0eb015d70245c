using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.Tuning;

namespace Mdm.Kernels.Gpu;

/// <summary>The one driver call ILGPU 1.5.3 does not make for us.</summary>
static class CudaDriver
{
    [System.Runtime.InteropServices.DllImport("libcuda.so.1")]
    public static extern int cuFuncSetAttribute(IntPtr function, int attribute, int value);
}

public sealed partial class IlgpuBackend
{
    /// <summary>The tensor-core bf16 GEMMs, indexed by <see cref="TensorCoreIndex"/> (launchable on CUDA only).</summary>
    static readonly Delegate[] MatmulTensorCore = MatmulTensorCoreNames.Select(n => KernelCatalog.All.Single(k => k.Name == n).Kernel).ToArray();

    /// <summary>The tensor-core GEMM's tile and warp layouts, by the catalogue name part that picks them:
    /// 128×128×64 with 8 or 4 warps, then the short-K tiles (8 warps on 128×128×32, 4 on 64×128×32).</summary>
    /// A property: <see cref="MatmulTensorCore"/>'s static initialiser (maybe in another file of this class) reads it.
    public static IReadOnlyList<(string Name, int TileM, int TileK, int Stages, bool Wide)> GemmLayouts => GemmLayoutTable.All;

    static class GemmLayoutTable
    {
        public static readonly (string Name, int TileM, int TileK, int Stages, bool Wide)[] All =
        [
            ("", MatmulTensorCoreKernels.TileM, MatmulTensorCoreKernels.TileK, MatmulTensorCoreKernels.Stages, false),
            ("Wide", MatmulTensorCoreKernels.TileM, MatmulTensorCoreKernels.TileK, MatmulTensorCoreKernels.Stages, true),
            ("BK32", 128, 32, 4, false),
            ("M64", 64, 32, 4, false),
        ];
    }

    /// <summary>The index in <see cref="GemmLayouts"/> of a <see cref="GemmVariant"/> (split-k: the narrow layout;
    /// wgmma, where it does not run: narrow or wide by K).</summary>
    static int GemmLayout(string variant, int k) => variant switch
    {
        GemmVariant.Wide => 1,
        GemmVariant.BK32 => 2,
        GemmVariant.M64BK32 => 3,
        GemmVariant.Wgmma => TuningHeuristics.GemmWideWarps(k) ? 1 : 0,
        _ => 0,
    };

    /// <summary>KernelCatalog.MatmulBF16TensorCore{layout}{BF16Out}{NN|NT|TN|TT}, in <see cref="TensorCoreIndex"/> order.</summary>
    static string[] MatmulTensorCoreNames =>
        [.. from bf16Out in new[] { false, true } from layout in GemmLayouts from form in new[] { "NN", "NT", "TN", "TT" }
            select $"MatmulBF16TensorCore{layout.Name}{(bf16Out ? "BF16Out" : "")}{form}"];

    static int TensorCoreIndex(bool bf16Out, int layout, bool transA, bool transB) =>
        (bf16Out ? 4 * GemmLayouts.Count : 0) + 4 * layout + (transA ? 2 : 0) + (transB ? 1 : 0);

    static int GemmSharedBytes(int layout) =>
        MatmulTensorCoreKernels.SharedBytesFor(GemmLayouts[layout].TileM, GemmLayouts[layout].TileK, GemmLayouts[layout].Stages);

    /// <summary>How bf16 GEMMs run (a <see cref="GemmVariant"/>), or by shape (null, the default): the
    /// <see cref="Tuning"/> table's entry for this GPU and K, else <see cref="TuningHeuristics.Gemm"/>.</summary>
    public string? GemmAlgorithm
    {
        get => gemmAlgorithm;
        set => gemmAlgorithm = TuningTable.CheckVariant(nameof(GemmAlgorithm), TuningTable.GemmOp, value);
    }
    string? gemmAlgorithm;

    /// <summary>The warp-layout view of <see cref="GemmAlgorithm"/>: 4 warps of 64×64 (true), 8 warps of 64×32 (false),
    /// or by shape (null).</summary>
    public bool? WideWarpTiles
    {
        get => gemmAlgorithm is null ? null : gemmAlgorithm == GemmVariant.Wide;
        set => gemmAlgorithm = value is null ? null : value.Value ? GemmVariant.Wide : GemmVariant.Narrow;
    }

    /// <summary>Whether bf16 GEMMs run on tensor cores here, and if not, why.</summary>
    public string TensorCoreStatus { get; private set; } = "not loaded";

    partial void LoadMatmulKernels(Loader loader)
    {
        var names = MatmulTensorCoreNames;
        for (int i = 0; i < names.Length; i++) LoadTensorCoreKernel(loader, names[i], MatmulTensorCore[i], GemmSharedBytes(i / 4 % GemmLayouts.Count));
        TensorCoreStatus = Kind == BackendKind.Cuda
            ? $"mma.sync m16n8k16 bf16 ({string.Join(", ", GemmLayouts.Select(l => $"{l.TileM}x{MatmulTensorCoreKernels.TileN}x{l.TileK}/{l.Stages} stages{(l.Wide ? " wide" : "")}"))}; {GemmAlgorithm ?? $"variant from the tuning table for {GpuArchitecture}, else {GemmVariant.M64BK32} for K <= {TuningHeuristics.SmallKMaxK} over more than {ShapeClass.FewTiles} tiles, 4 warps of 64x64 when K >= {TuningHeuristics.WideWarpMinK}"})"
            : "CUDA only: bf16 GEMMs use the SIMT kernel";
    }

    /// <summary>Compiles an explicitly grouped kernel with this accelerator's PTX backend, rewrites its inline-PTX
    /// depots into registers (<see cref="PtxLocalPromotion"/>) and loads the rewritten PTX. Kernels that use more than
    /// 48 KB of dynamic shared memory must opt in per function (ILGPU never does): <paramref name="sharedBytes"/>.</summary>
    /// Public for kernel labs and custom tensor-core kernels (bench/Mdm.Bench/Lab); CUDA only.
    public TDelegate LoadWithPromotedDepots<TDelegate>(Delegate kernel, KernelSpecialization specialization, int sharedBytes) where TDelegate : Delegate =>
        LoadPromoted(kernel, specialization, sharedBytes).CreateLauncherDelegate<TDelegate>();

    /// <param name="sm90a">Patch the PTX for wgmma (<see cref="TensorCore.Sm90aPtx"/>): loads on compute capability 9.0 only.</param>
    Kernel LoadPromoted(Delegate kernel, KernelSpecialization specialization, int sharedBytes, bool sm90a = false)
    {
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(kernel.Method);
        var compiled = (PTXCompiledKernel)accelerator.GetBackend().Compile(entry, specialization);
        string ptx = PtxLocalPromotion.Promote(compiled.PTXAssembly, out int promoted);
        if (promoted == 0) throw new InvalidOperationException($"{kernel.Method.Name}: no inline-PTX depots could be promoted");
        if (sm90a) ptx = TensorCore.Sm90aPtx.Patch(ptx);
        // PTXCompiledKernel's constructor and EntryPoint are internal in ILGPU 1.5.3; the public LoadKernel takes the result.
        var entryPoint = typeof(CompiledKernel).GetProperty("EntryPoint", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(compiled);
        var ctor = typeof(PTXCompiledKernel).GetConstructors(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Single(c => c.GetParameters().Length == 4);
        var patched = (CompiledKernel)ctor.Invoke([compiled.Context, entryPoint, compiled.Info, ptx]);
        var loaded = accelerator.LoadKernel(patched);
        if (sharedBytes > 48 * 1024)
        {
            const int MaxDynamicSharedSizeBytes = 8;   // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            int rc = CudaDriver.cuFuncSetAttribute(((ILGPU.Runtime.Cuda.CudaKernel)loaded).FunctionPtr, MaxDynamicSharedSizeBytes, sharedBytes);
            if (rc != 0) throw new InvalidOperationException($"{kernel.Method.Name}: cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, {sharedBytes}) failed with CUDA error {rc}");
        }
        return loaded;
    }

    protected internal override void Gemm(Tensor a, Tensor b, Tensor c, Tensor? bias, in MatmulDesc d)
    {
        if (a.DType == DType.BF16 && TryTensorCoreGemm(a, b, c, bias, d)) return;
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
        var biasView = bias is null ? Unread(c) : F32(bias);
        LaunchLog.CountFlops(2.0 * d.Batch * d.M * d.N * d.K);
        bool bf16In = a.DType == DType.BF16;
        if (c.DType == DType.BF16)
        {
            if (bf16In) Run(MatmulKernels.Gemm<ushort, BF16Widen, ushort, BF16Narrow>, cfg, U16(a), U16(b), U16(c), biasView, p);
            else Run(MatmulKernels.Gemm<float, F32Widen, ushort, BF16Narrow>, cfg, F32(a), F32(b), U16(c), biasView, p);
        }
        else if (bf16In) Run(MatmulKernels.Gemm<ushort, BF16Widen, float, F32Narrow>, cfg, U16(a), U16(b), F32(c), biasView, p);
        else Run(MatmulKernels.Gemm<float, F32Widen, float, F32Narrow>, cfg, F32(a), F32(b), F32(c), biasView, p);
    }

    /// <summary>The tensor-core path, when it can take the shape: cp.async moves 16-byte chunks, so every stored row
    /// length and batch stride must be a multiple of 8 bf16 values and both operands 16-byte aligned.</summary>
    /// <paramref name="rowBias"/>: bias is indexed by C's row (a convolution's output channel), not its column.
    bool TryTensorCoreGemm(Tensor a, Tensor b, Tensor c, Tensor? bias, in MatmulDesc d, bool rowBias = false)
    {
        string variant = GemmAlgorithm ?? Tuning.Gemm(GpuArchitecture, d.K, ShapeClass.GemmTiles(d.M, d.N, d.OutBatch));
        bool bf16Out = c.DType == DType.BF16;
        if (UseTensorCores && !bf16Out && TryWgmmaGemm(a, b, c, bias, d, rowBias, UseWgmmaGemm ?? variant == GemmVariant.Wgmma)) return true;
        int layout = GemmLayout(variant, d.K);
        var (tileM, tileK, wide) = (GemmLayouts[layout].TileM, GemmLayouts[layout].TileK, GemmLayouts[layout].Wide);
        int tilesM = (d.M + tileM - 1) / tileM, tilesN = (d.N + MatmulTensorCoreKernels.TileN - 1) / MatmulTensorCoreKernels.TileN;
        long tiles = (long)tilesM * tilesN * d.OutBatch;
        var kernel = MatmulTensorCore[TensorCoreIndex(bf16Out, layout, d.TransA, d.TransB)];
        if (!Launchable(kernel) || !UseTensorCores) return false;
        long pa = U16(a).LoadEffectiveAddressAsPtr().ToInt64(), pb = U16(b).LoadEffectiveAddressAsPtr().ToInt64();
        if (d.Lda % 8 != 0 || d.Ldb % 8 != 0 || d.StrideA % 8 != 0 || d.StrideB % 8 != 0 || pa % 16 != 0 || pb % 16 != 0) return false;
        if (d.OutBatch > 65535 || (long)d.OutBatch * d.StrideC > int.MaxValue || (long)d.M * d.N > int.MaxValue) return false;
        long aRows = d.TransA ? d.K : d.M, bRows = d.TransB ? d.N : d.K;     // each matrix's byte offsets are 32-bit in the kernel
        if (2L * aRows * d.Lda + 64L * d.Lda >= int.MaxValue || 2L * bRows * d.Ldb + 64L * d.Ldb >= int.MaxValue) return false;
        if (tiles == 0) return true;
        int kTiles = (d.K + tileK - 1) / tileK;
        int slices = kTiles * (d.SumBatch ? d.Batch : 1);
        int splits = variant == GemmVariant.SplitK && !bf16Out && bias is null
            ? TuningHeuristics.GemmSplits(tiles, slices, accelerator.NumMultiprocessors) : 1;
        int splitSlices = (slices + splits - 1) / splits;
        splits = splitSlices == 0 ? 1 : (slices + splitSlices - 1) / splitSlices;   // no empty piece
        if ((long)d.OutBatch * splits > 65535) splits = 1;
        var p = new TensorCoreGemmArgs
        {
            A = pa, B = pb, StrideA = d.StrideA, StrideB = d.StrideB,
            M = d.M, N = d.N, K = d.K, Lda = d.Lda, Ldb = d.Ldb, Ldc = d.Ldc, StrideC = (int)d.StrideC,
            Batch = d.Batch, SumBatch = d.SumBatch ? 1 : 0, HasBias = bias is null ? 0 : rowBias ? 2 : 1,
            TilesN = tilesN, KTiles = kTiles, Splits = splits, SplitSlices = splitSlices,
        };
        if (splits > 1) Fill(c, 0f);   // the pieces add into C
        var cfg = new KernelConfig(new Index2D(tilesM * tilesN, d.OutBatch * splits), new Index2D(MatmulTensorCoreKernels.ThreadsFor(tileM, wide), 1),
            SharedMemoryConfig.RequestDynamic<byte>(GemmSharedBytes(layout)));
        LaunchLog.CountFlops(2.0 * d.Batch * d.M * d.N * d.K);
        var biasView = bias is null ? Unread(c) : F32(bias);
        if (bf16Out)
        {
            p.C = U16(c).LoadEffectiveAddressAsPtr().ToInt64();
            p.CAligned = p.C % 16 == 0 && d.Ldc % 8 == 0 && d.StrideC % 8 == 0 ? 1 : 0;
            Run((Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs>)kernel, cfg, U16(c), biasView, p);
        }
        else Run((Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs>)kernel, cfg, F32(c), biasView, p);
        Interlocked.Increment(ref tensorCoreGemms);
        return true;
    }

    /// <summary>A float view for a bias the kernel does not read (HasBias = 0): c's whole buffer, whatever c's type.</summary>
    static ArrayView<float> Unread(Tensor c) => ((IlgpuStorage)c.Storage).Buffer.View.BaseView.Cast<float>();

    long tensorCoreGemms;

    /// <summary>How many GEMMs took the tensor-core path (tests check that the shapes meant for it did).</summary>
    public long TensorCoreGemms => Interlocked.Read(ref tensorCoreGemms);

    public override bool HasTensorCores => UseTensorCores && Launchable(MatmulTensorCore[0]);

    /// <summary>Off = bf16 GEMMs take the SIMT kernel even on CUDA (for A/B comparisons in tests and benchmarks).</summary>
    public bool UseTensorCores { get; set; } = true;
}
