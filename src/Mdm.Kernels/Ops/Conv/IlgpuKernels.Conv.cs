using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// Convolution launchers (kernels in ConvKernels.cs). bf16 passes on CUDA first try the implicit GEMM on tensor cores
// (Gpu/TensorCore/IlgpuBackend.TensorCoreConv.cs: ConvAlgorithm or the tuning table), else im2col/col2im + GEMM.
public sealed partial class IlgpuBackend
{

    /// <summary>Bytes of column matrix one lowered convolution call materialises at most (samples are chunked to fit;
    /// a sample that alone exceeds it takes the widened F32 kernels). Settable so tests can force several chunks.</summary>
    public long Im2ColBudgetBytes { get; set; } = 512L << 20;


    /// <summary>How many samples' columns fit the budget at once (at least one, at most the batch).</summary>
    int SamplesPerChunk(in Conv2dGeometry g, long bytesPerSample) => (int)Math.Max(1, Math.Min(g.N, Im2ColBudgetBytes / bytesPerSample));

    /// <summary>bf16 columns of samples n0 .. n0+count−1 into cols (one group per column-matrix row).</summary>
    void Im2Col(Tensor x, Tensor cols, in Conv2dGeometry g, int n0, int count) =>
        Run(ConvKernels.Im2ColBF16, new KernelConfig((int)Math.Clamp((long)count * g.PatchSize, 1, maxGroups), groupSize), U16(x),
            U16(cols).SubView(0, (long)count * g.PatchSize * g.Ho * g.Wo).Cast<uint>(), g, n0, count);

    /// <summary>
    /// Whether a bf16 convolution is lowered to im2col/col2im + GEMM (else the widened F32 kernels run): on CUDA when
    /// the tensor-core GEMM can take the shapes; on the CPU accelerator too (SIMT GEMM), so CI runs the same
    /// im2col/col2im kernels on tiny shapes.
    /// </summary>
    bool LowerConv(in Conv2dGeometry g, long bytesPerSample) =>
        (Kind == BackendKind.IlgpuCpu || HasTensorCores)
        && g.PatchSize % 8 == 0 && (g.Ho * g.Wo) % 8 == 0 && bytesPerSample <= Im2ColBudgetBytes;

    /// <summary>
    /// bf16 input gradient on tensor cores: per chunk of samples, dcols[n] = Wᵀ [Cin·KH·KW, Cout] · dy[n] [Cout, Ho·Wo]
    /// (one batched GEMM, W broadcast, f32 columns), then col2im gathers each dx element's taps.
    /// </summary>
    protected internal override void Conv2dBackwardInputBF16(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g)
    {
        if (TryImplicitGemmConv(ConvPass.Dgrad, weight, dy, dx, null, g)) return;
        int k = g.PatchSize, pixels = g.Ho * g.Wo;
        long perSample = 4L * k * pixels;
        if (!LowerConv(g, perSample)) { base.Conv2dBackwardInputBF16(dy, weight, dx, g); return; }
        int chunk = SamplesPerChunk(g, perSample);
        using var cols = Empty(DType.F32, chunk, k, pixels);
        for (int n0 = 0; n0 < g.N; n0 += chunk)
        {
            int count = Math.Min(chunk, g.N - n0);
            using var dySlice = dy.Slice(n0, count);
            using var colSlice = cols.Slice(0, count);
            var d = new MatmulDesc(count, k, pixels, g.Cout, true, false, 0, (long)g.Cout * pixels, (long)k * pixels, false);
            Gemm(weight, dySlice, colSlice, null, d);   // tensor cores on CUDA

            Run(ConvKernels.Col2Im, Launch((long)count * g.Cin * g.H * g.W), F32(cols), F32(dx), g, n0, count);
        }
    }

    /// <summary>
    /// bf16 weight gradient on tensor cores: per chunk of samples, im2col(x) in bf16, then dW = Σ_n dy[n] [Cout, Ho·Wo] ·
    /// cols[n]ᵀ [Ho·Wo, Cin·KH·KW] as one GEMM summed over the chunk's batch; chunks after the first are added.
    /// </summary>
    protected internal override void Conv2dBackwardWeightBF16(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g)
    {
        if (TryImplicitGemmConv(ConvPass.Wgrad, dy, x, dweight, null, g)) return;
        int k = g.PatchSize, pixels = g.Ho * g.Wo;
        long perSample = 2L * k * pixels;
        if (!LowerConv(g, perSample)) { base.Conv2dBackwardWeightBF16(x, dy, dweight, g); return; }
        int chunk = SamplesPerChunk(g, perSample);
        using var cols = Empty(DType.BF16, chunk, k, pixels);
        using var partial = g.N > chunk ? Empty(DType.F32, g.Cout, k) : null;
        var dw2 = dweight.Reshape(g.Cout, k);
        try
        {
            for (int n0 = 0; n0 < g.N; n0 += chunk)
            {
                int count = Math.Min(chunk, g.N - n0);
                Im2Col(x, cols, g, n0, count);
                using var dySlice = dy.Slice(n0, count);
                var target = n0 == 0 ? dw2 : partial!;
                var d = new MatmulDesc(count, g.Cout, k, pixels, false, true, (long)g.Cout * pixels, (long)k * pixels, 0, true);
                Gemm(dySlice, cols, target, null, d);   // tensor cores on CUDA
                if (n0 > 0) Ops.Add(dw2, partial!, dw2);
            }
        }
        finally { if (!ReferenceEquals(dw2, dweight)) dw2.Dispose(); }
    }

    /// <summary>
    /// bf16 convolution as GEMM (tensor cores on CUDA): per chunk of samples, im2col into bf16 columns [Cin·KH·KW, Ho·Wo], then one
    /// batched tensor-core GEMM y[n] = W [Cout, Cin·KH·KW] · cols[n] (W broadcast over the batch, the bias added per
    /// output row), which writes NCHW directly. Falls back to the widened F32 kernel where the GEMM cannot take the
    /// shape (Cin·KH·KW or Ho·Wo not a multiple of 8) or off CUDA.
    /// </summary>
    protected internal override void Conv2dForwardBF16(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g) =>
        ForwardBF16(x, weight, bias, null, y, g);

    /// <summary>The bf16 forward into a BF16 y (autocast's conv output): rounded in the implicit GEMM's store on tensor
    /// cores; elsewhere (im2col path, CPU accelerator) an f32 block rounded into y and freed at once.</summary>
    protected internal override void Conv2dForwardBF16Out(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g)
    {
        if (TryImplicitGemmConv(ConvPass.Forward, weight, x, y, bias, g)) return;
        base.Conv2dForwardBF16Out(x, weight, bias, y, g);
    }

    /// <summary>The bf16 forward with the residual added in the epilogue: inside the implicit GEMM's store on tensor
    /// cores, after each chunk's GEMM on the im2col path, in the kernel on the widened F32 path.</summary>
    protected internal override void Conv2dForwardResidualBF16(Tensor x, Tensor weight, Tensor? bias, Tensor residual, Tensor y, in Conv2dGeometry g) =>
        ForwardBF16(x, weight, bias, residual, y, g);

    void ForwardBF16(Tensor x, Tensor weight, Tensor? bias, Tensor? residual, Tensor y, in Conv2dGeometry g)
    {
        if (TryImplicitGemmConv(ConvPass.Forward, weight, x, y, bias, g, residual)) return;
        int k = g.PatchSize, pixels = g.Ho * g.Wo;
        long perSample = 2L * k * pixels;
        if (!LowerConv(g, perSample))
        {
            if (residual is null) base.Conv2dForwardBF16(x, weight, bias, y, g);
            else base.Conv2dForwardResidualBF16(x, weight, bias, residual, y, g);
            return;
        }
        int chunk = SamplesPerChunk(g, perSample);
        using var cols = Empty(DType.BF16, chunk, k, pixels);
        for (int n0 = 0; n0 < g.N; n0 += chunk)
        {
            int count = Math.Min(chunk, g.N - n0);
            Im2Col(x, cols, g, n0, count);
            using var ySlice = y.Slice(n0, count);
            var d = new MatmulDesc(count, g.Cout, pixels, k, false, false, 0, (long)k * pixels, (long)g.Cout * pixels, false);
            if (!TryTensorCoreGemm(weight, cols, ySlice, bias, d, rowBias: true))
            {
                Gemm(weight, cols, ySlice, null, d);   // SIMT GEMM (CPU accelerator), then the per-channel bias
                if (bias is not null) { using var b4 = bias.Reshape(1, g.Cout, 1, 1); Ops.Add(ySlice, b4, ySlice); }
            }
            if (residual is not null) { using var rSlice = residual.Slice(n0, count); Ops.Add(ySlice, rSlice, ySlice); }
        }
    }

    protected internal override void Conv2dForward(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g) =>
        // Views a flag turns off are never read; y stands in for them.
        Run(ConvKernels.Forward, Launch(y.Numel), F32(x), F32(weight), bias is null ? F32(y) : F32(bias), bias is null ? 0 : 1, F32(y), 0, F32(y), g);

    protected internal override void Conv2dForwardResidual(Tensor x, Tensor weight, Tensor? bias, Tensor residual, Tensor y, in Conv2dGeometry g) =>
        Run(ConvKernels.Forward, Launch(y.Numel), F32(x), F32(weight), bias is null ? F32(y) : F32(bias), bias is null ? 0 : 1, F32(residual), 1, F32(y), g);

    protected internal override void Conv2dBackwardInput(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g) =>
        Run(ConvKernels.BackwardInput, Launch(dx.Numel), F32(dy), F32(weight), F32(dx), g);

    protected internal override void Conv2dBackwardWeight(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g) =>
        Run(ConvKernels.BackwardWeight, new KernelConfig((int)Math.Clamp(dweight.Numel, 1, maxGroups), ReductionGroupSize), F32(x), F32(dy), F32(dweight), g);

    protected internal override void Conv2dBackwardBias(Tensor dy, Tensor dbias, in Conv2dGeometry g) =>
        Run(ConvKernels.BackwardBias, new KernelConfig(Math.Clamp(g.Cout, 1, maxGroups), ReductionGroupSize), F32(dy), F32(dbias), g.N, g.Cout, g.Ho * g.Wo);
}
