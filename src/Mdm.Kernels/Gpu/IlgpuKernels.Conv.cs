using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

// Convolution launchers (kernels in Kernels/ConvKernels.cs).
public sealed partial class IlgpuBackend
{
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>, Conv2dGeometry> conv2dForward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, Conv2dGeometry> conv2dBackwardInput = null!, conv2dBackwardWeight = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int> conv2dBackwardBias = null!;
    Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, Conv2dGeometry, int, int> im2colBF16 = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, Conv2dGeometry, int, int> col2im = null!;

    /// <summary>Bytes of bf16 im2col columns one tensor-core convolution call materialises at most (samples are chunked).</summary>
    const long Im2ColBudgetBytes = 512L << 20;

    partial void LoadConvKernels(Loader loader)
    {
        var a = accelerator;
        conv2dForward = loader.Load(nameof(KernelCatalog.Conv2dForward), () => a.LoadStreamKernel(KernelCatalog.Conv2dForward));
        conv2dBackwardInput = loader.Load(nameof(KernelCatalog.Conv2dBackwardInput), () => a.LoadStreamKernel(KernelCatalog.Conv2dBackwardInput));
        conv2dBackwardWeight = loader.Load(nameof(KernelCatalog.Conv2dBackwardWeight), () => a.LoadStreamKernel(KernelCatalog.Conv2dBackwardWeight));
        conv2dBackwardBias = loader.Load(nameof(KernelCatalog.Conv2dBackwardBias), () => a.LoadStreamKernel(KernelCatalog.Conv2dBackwardBias));
        im2colBF16 = loader.Load(nameof(KernelCatalog.Im2ColBF16), () => a.LoadStreamKernel(KernelCatalog.Im2ColBF16));
        col2im = loader.Load(nameof(KernelCatalog.Col2Im), () => a.LoadStreamKernel(KernelCatalog.Col2Im));
    }

    /// <summary>Whether the tensor-core convolution can take this geometry (else the widened F32 kernels run).</summary>
    bool TensorCoreConv(in Conv2dGeometry g, long bytesPerSample) =>
        UseTensorCores && matmulTensorCore[0] is not null && g.PatchSize % 8 == 0 && (g.Ho * g.Wo) % 8 == 0 && bytesPerSample <= Im2ColBudgetBytes;

    /// <summary>
    /// bf16 input gradient on tensor cores: per chunk of samples, dcols[n] = Wᵀ [Cin·KH·KW, Cout] · dy[n] [Cout, Ho·Wo]
    /// (one batched GEMM, W broadcast, f32 columns), then col2im gathers each dx element's taps.
    /// </summary>
    protected internal override void Conv2dBackwardInputBF16(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g)
    {
        int k = g.PatchSize, pixels = g.Ho * g.Wo;
        long perSample = 4L * k * pixels;
        if (!TensorCoreConv(g, perSample)) { base.Conv2dBackwardInputBF16(dy, weight, dx, g); return; }
        int chunk = (int)Math.Max(1, Math.Min(g.N, Im2ColBudgetBytes / perSample));
        using var cols = Empty(DType.F32, chunk, k, pixels);
        for (int n0 = 0; n0 < g.N; n0 += chunk)
        {
            int count = Math.Min(chunk, g.N - n0);
            using var dySlice = dy.Slice(n0, count);
            using var colSlice = cols.Slice(0, count);
            var d = new MatmulDesc(count, k, pixels, g.Cout, true, false, 0, (long)g.Cout * pixels, (long)k * pixels, false);
            if (!TryTensorCoreGemm(weight, dySlice, colSlice, null, d))
                throw new InvalidOperationException($"Conv2dBackwardInputBF16: the tensor-core GEMM refused {g} (alignment)");
            col2im(Launch((long)count * g.Cin * g.H * g.W), F32(cols), F32(dx), g, n0, count);
        }
    }

    /// <summary>
    /// bf16 weight gradient on tensor cores: per chunk of samples, im2col(x) in bf16, then dW = Σ_n dy[n] [Cout, Ho·Wo] ·
    /// cols[n]ᵀ [Ho·Wo, Cin·KH·KW] as one GEMM summed over the chunk's batch; chunks after the first are added.
    /// </summary>
    protected internal override void Conv2dBackwardWeightBF16(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g)
    {
        int k = g.PatchSize, pixels = g.Ho * g.Wo;
        long perSample = 2L * k * pixels;
        if (!TensorCoreConv(g, perSample)) { base.Conv2dBackwardWeightBF16(x, dy, dweight, g); return; }
        int chunk = (int)Math.Max(1, Math.Min(g.N, Im2ColBudgetBytes / perSample));
        using var cols = Empty(DType.BF16, chunk, k, pixels);
        using var partial = g.N > chunk ? Empty(DType.F32, g.Cout, k) : null;
        var dw2 = dweight.Reshape(g.Cout, k);
        try
        {
            for (int n0 = 0; n0 < g.N; n0 += chunk)
            {
                int count = Math.Min(chunk, g.N - n0);
                im2colBF16(Launch((long)count * k * pixels), U16(x), U16(cols), g, n0, count);
                using var dySlice = dy.Slice(n0, count);
                var target = n0 == 0 ? dw2 : partial!;
                var d = new MatmulDesc(count, g.Cout, k, pixels, false, true, (long)g.Cout * pixels, (long)k * pixels, 0, true);
                if (!TryTensorCoreGemm(dySlice, cols, target, null, d))
                    throw new InvalidOperationException($"Conv2dBackwardWeightBF16: the tensor-core GEMM refused {g} (alignment)");
                if (n0 > 0) Ops.Add(dw2, partial!, dw2);
            }
        }
        finally { if (!ReferenceEquals(dw2, dweight)) dw2.Dispose(); }
    }

    /// <summary>
    /// bf16 convolution on tensor cores: per chunk of samples, im2col into bf16 columns [Cin·KH·KW, Ho·Wo], then one
    /// batched tensor-core GEMM y[n] = W [Cout, Cin·KH·KW] · cols[n] (W broadcast over the batch, the bias added per
    /// output row), which writes NCHW directly. Falls back to the widened F32 kernel where the GEMM cannot take the
    /// shape (Cin·KH·KW or Ho·Wo not a multiple of 8) or off CUDA.
    /// </summary>
    protected internal override void Conv2dForwardBF16(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g)
    {
        int k = g.PatchSize, pixels = g.Ho * g.Wo;
        long perSample = 2L * k * pixels;
        if (!UseTensorCores || matmulTensorCore[0] is null || k % 8 != 0 || pixels % 8 != 0 || perSample > Im2ColBudgetBytes)
        {
            base.Conv2dForwardBF16(x, weight, bias, y, g);
            return;
        }
        int chunk = (int)Math.Max(1, Math.Min(g.N, Im2ColBudgetBytes / perSample));
        using var cols = Empty(DType.BF16, chunk, k, pixels);
        for (int n0 = 0; n0 < g.N; n0 += chunk)
        {
            int count = Math.Min(chunk, g.N - n0);
            im2colBF16(Launch((long)count * k * pixels), U16(x), U16(cols), g, n0, count);
            using var ySlice = y.Slice(n0, count);
            var d = new MatmulDesc(count, g.Cout, pixels, k, false, false, 0, (long)k * pixels, (long)g.Cout * pixels, false);
            if (!TryTensorCoreGemm(weight, cols, ySlice, bias, d, rowBias: true))
                throw new InvalidOperationException($"Conv2dForwardBF16: the tensor-core GEMM refused {g} (alignment)");
        }
    }

    protected internal override void Conv2dForward(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g) =>
        // Without a bias the kernel never reads its bias view; the weight stands in for it.
        conv2dForward(Launch(y.Numel), F32(x), F32(weight), bias is null ? F32(weight) : F32(bias), bias is null ? 0 : 1, F32(y), g);

    protected internal override void Conv2dBackwardInput(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g) =>
        conv2dBackwardInput(Launch(dx.Numel), F32(dy), F32(weight), F32(dx), g);

    protected internal override void Conv2dBackwardWeight(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g) =>
        conv2dBackwardWeight(new KernelConfig((int)Math.Clamp(dweight.Numel, 1, maxGroups), groupSize), F32(x), F32(dy), F32(dweight), g);

    protected internal override void Conv2dBackwardBias(Tensor dy, Tensor dbias, in Conv2dGeometry g) =>
        conv2dBackwardBias(new KernelConfig(Math.Clamp(g.Cout, 1, maxGroups), groupSize), F32(dy), F32(dbias), g.N, g.Cout, g.Ho * g.Wo);
}
