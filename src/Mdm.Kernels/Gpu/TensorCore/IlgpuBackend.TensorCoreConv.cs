using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Kernels.Gpu.Tuning;

namespace Mdm.Kernels.Gpu;

// The bf16 convolution's implicit-GEMM path on CUDA, chosen by ConvAlgorithm or the tuning table.
public sealed partial class IlgpuBackend
{
    /// <summary>Implicit-GEMM convolutions indexed by pass·2 + wide (launchable on CUDA only).</summary>
    static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvGemmArgs>[] ConvTensorCore =
        ConvKernelNames.Select(n => (Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvGemmArgs>)KernelCatalog.All.Single(k => k.Name == n).Kernel).ToArray();

    /// <summary>The forward with a bf16 output, indexed by wide (launchable on CUDA only).</summary>
    static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ConvGemmArgs>[] ConvTensorCoreBF16Out =
        new[] { nameof(KernelCatalog.ConvTensorCoreForwardBF16Out), nameof(KernelCatalog.ConvTensorCoreWideForwardBF16Out) }
            .Select(n => (Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ConvGemmArgs>)KernelCatalog.All.Single(k => k.Name == n).Kernel).ToArray();

    /// <summary>How bf16 convolutions run on CUDA: <see cref="ConvVariant.Im2Col"/> (im2col/col2im + tensor-core GEMM),
    /// <see cref="ConvVariant.ImplicitNarrow"/> or <see cref="ConvVariant.ImplicitWide"/> (implicit GEMM, 8 warps of
    /// 64×32 or 4 of 64×64); null (the default) = the <see cref="Tuning"/> table's "conv" entry for this GPU and shape,
    /// else <see cref="TuningHeuristics.Conv"/>. Implicit GEMM takes 3×3 and 1×1 kernels at stride 1 or 2; other
    /// convolutions keep the im2col path.</summary>
    public string? ConvAlgorithm
    {
        get => convAlgorithm;
        set => convAlgorithm = TuningTable.CheckVariant(nameof(ConvAlgorithm), TuningTable.ConvOp, value);
    }
    string? convAlgorithm;

    /// <summary>How many convolution passes (forward, input or weight gradient) took the implicit-GEMM kernels.</summary>
    public long ImplicitGemmConvs => Interlocked.Read(ref implicitGemmConvs);
    long implicitGemmConvs;

    static string[] ConvKernelNames =>
    [
        nameof(KernelCatalog.ConvTensorCoreForward), nameof(KernelCatalog.ConvTensorCoreWideForward),
        nameof(KernelCatalog.ConvTensorCoreDgrad), nameof(KernelCatalog.ConvTensorCoreWideDgrad),
        nameof(KernelCatalog.ConvTensorCoreWgrad), nameof(KernelCatalog.ConvTensorCoreWideWgrad),
    ];

    void LoadConvTensorCoreKernels(Loader loader)
    {
        var names = ConvKernelNames;
        for (int i = 0; i < names.Length; i++) LoadTensorCoreKernel(loader, names[i], ConvTensorCore[i], ConvTensorCoreKernels.SharedBytes);
        LoadTensorCoreKernel(loader, nameof(KernelCatalog.ConvTensorCoreForwardBF16Out), ConvTensorCoreBF16Out[0], ConvTensorCoreKernels.SharedBytes);
        LoadTensorCoreKernel(loader, nameof(KernelCatalog.ConvTensorCoreWideForwardBF16Out), ConvTensorCoreBF16Out[1], ConvTensorCoreKernels.SharedBytes);
    }

    /// <summary>The implicit-GEMM pass when the variant in force says so, the kernels are loaded and can take the shape:
    /// a = weight (forward, dgrad) or dy (wgrad), b = x (forward, wgrad) or dy (dgrad), all bf16; y is f32, or bf16 for
    /// the forward (rounded in the epilogue's store).</summary>
    bool TryImplicitGemmConv(ConvPass pass, Tensor a, Tensor b, Tensor y, Tensor? bias, in Conv2dGeometry g, Tensor? residual = null)
    {
        bool bf16Out = y.DType == DType.BF16;
        if (!Launchable(ConvTensorCore[0]) || !UseTensorCores || (bf16Out && (pass != ConvPass.Forward || !Launchable(ConvTensorCoreBF16Out[0])))) return false;
        bool window = (g.KH == 3 && g.KW == 3) || (g.KH == 1 && g.KW == 1);
        if (!window || g.StrideH is < 1 or > 2 || g.StrideW is < 1 or > 2 || !ConvTensorCoreKernels.IndicesFit(g)) return false;
        var p = ConvTensorCoreKernels.Args(pass, g, DeviceAddress(a));
        string variant = ConvAlgorithm ?? Tuning.Conv(GpuArchitecture, pass, g.KH, p.K);
        if (variant == ConvVariant.Im2Col) return false;
        bool wide = variant == ConvVariant.ImplicitWide;
        int groups = ConvTensorCoreKernels.Groups(p);
        if (groups == 0 || groups > maxGroups) return groups == 0;
        if (pass == ConvPass.Wgrad) p.Splits = ConvSplits(groups, p.KTiles);
        if (bias is not null) p.HasBias = 1;
        if (residual is not null) p.HasResidual = 1;   // forward only (the residual epilogue)
        if (p.Splits > 1) Fill(y, 0f);
        var cfg = new KernelConfig(new Index2D(groups, p.Splits), new Index2D(wide ? 128 : 256, 1),
            SharedMemoryConfig.RequestDynamic<byte>(ConvTensorCoreKernels.SharedBytes));
        if (bf16Out)
        {
            // An f32 view stands in for an absent bias or residual (never read then).
            using var none = bias is null && residual is null ? Empty(DType.F32, 1) : null;
            var unused = F32(bias ?? residual ?? none!);
            Run(ConvTensorCoreBF16Out[wide ? 1 : 0], cfg, U16(a), U16(b), U16(y), bias is null ? unused : F32(bias), residual is null ? unused : F32(residual), p);
        }
        else
            Run(ConvTensorCore[(int)pass * 2 + (wide ? 1 : 0)], cfg, U16(a), U16(b), F32(y), bias is null ? F32(y) : F32(bias), residual is null ? F32(y) : F32(residual), p);
        Interlocked.Increment(ref implicitGemmConvs);
        return true;
    }

    /// <summary>Split K until there are about two groups per multiprocessor, each with at least 8 slices of 64.</summary>
    int ConvSplits(int groups, int kTiles) =>
        Math.Clamp(Math.Min(2 * accelerator.NumMultiprocessors / groups, kTiles / 8), 1, 65535);
}
