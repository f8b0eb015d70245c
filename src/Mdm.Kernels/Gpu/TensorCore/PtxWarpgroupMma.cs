using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// The warpgroup primitives as inline PTX. wgmma needs <c>.target sm_90a</c>, which ILGPU never writes: load such
/// kernels with <c>IlgpuBackend</c>'s sm_90a path (<see cref="Sm90aPtx"/>), and only on sm_90. The 32 accumulators go in
/// as <c>Ref&lt;float&gt;</c> and the descriptors as four 32-bit halves (36 EmitRef operands, 37 with a step, every one
/// 32 bits wide); the asm adds the dynamic shared buffer's address to each start address and rebuilds the 64-bit
/// descriptors.
/// </summary>
public readonly struct PtxWarpgroupMma : IWarpgroupMma<PtxWarpgroupMma>
{
    // Start addresses are in 16-byte units: (buffer address >> 4) + offset field, under 256 KB, so no carry leaves the field.
    const string Descriptors =
        "{\n\t.reg .u32 base, alo, blo;\n\t.reg .b64 da, db;\n\t.reg .pred accumulate;\n\t" +
        "mov.u32 base, __dyn_shared_alloca;\n\tshr.u32 base, base, 4;\n\t" +
        "add.u32 alo, %32, base;\n\tadd.u32 blo, %34, base;\n\t" +
        "mov.u32 base, 1;\n\tsetp.ne.u32 accumulate, base, 0;\n\t";

    const string Issue =
        "mov.b64 da, {alo, %33};\n\tmov.b64 db, {blo, %35};\n\t" +
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, da, db, accumulate, 1, 1, 0, 0;\n\t";

    const string Step = "add.u32 alo, alo, %36;\n\tadd.u32 blo, blo, %36;\n\t";

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PtxWarpgroupMma Bind(ArrayView<byte> shared) => this;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void FenceSharedStores() => CudaAsm.Emit("fence.proxy.async.shared::cta;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Fence() => CudaAsm.Emit("wgmma.fence.sync.aligned;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit() => CudaAsm.Emit("wgmma.commit_group.sync.aligned;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitAll() => CudaAsm.Emit("wgmma.wait_group.sync.aligned 0;");

    /// <summary>scale-d = 1 (accumulate), A and B unscaled and K-major (no transpose).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Acc64x64 Mma(Acc64x64 d, MatrixDescriptor a, MatrixDescriptor b) => Emit(d, a, b, 0, fusedK64: false);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Acc64x64 MmaK64(Acc64x64 d, MatrixDescriptor a, MatrixDescriptor b, int stepBytes) => Emit(d, a, b, (uint)stepBytes >> 4, fusedK64: true);

    /// <summary>One asm block: a single wgmma, or the fused K-64 step (<paramref name="fusedK64"/> is a constant at
    /// every call, so ILGPU keeps only one of the two blocks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Acc64x64 Emit(Acc64x64 d, MatrixDescriptor a, MatrixDescriptor b, uint stepUnits, bool fusedK64)
    {
        Ref<float> c0 = d.N0.X, c1 = d.N0.Y, c2 = d.N0.Z, c3 = d.N0.W;
        Ref<float> c4 = d.N1.X, c5 = d.N1.Y, c6 = d.N1.Z, c7 = d.N1.W;
        Ref<float> c8 = d.N2.X, c9 = d.N2.Y, c10 = d.N2.Z, c11 = d.N2.W;
        Ref<float> c12 = d.N3.X, c13 = d.N3.Y, c14 = d.N3.Z, c15 = d.N3.W;
        Ref<float> c16 = d.N4.X, c17 = d.N4.Y, c18 = d.N4.Z, c19 = d.N4.W;
        Ref<float> c20 = d.N5.X, c21 = d.N5.Y, c22 = d.N5.Z, c23 = d.N5.W;
        Ref<float> c24 = d.N6.X, c25 = d.N6.Y, c26 = d.N6.Z, c27 = d.N6.W;
        Ref<float> c28 = d.N7.X, c29 = d.N7.Y, c30 = d.N7.Z, c31 = d.N7.W;
        Input<uint> aLo = a.Lo, aHi = a.Hi, bLo = b.Lo, bHi = b.Hi, step = stepUnits;
        if (fusedK64)
            CudaAsm.EmitRef(Descriptors + "wgmma.fence.sync.aligned;\n\t" + Issue + Step + Issue + Step + Issue + Step + Issue +
                "wgmma.commit_group.sync.aligned;\n\twgmma.wait_group.sync.aligned 0;\n\t}",
                ref c0, ref c1, ref c2, ref c3, ref c4, ref c5, ref c6, ref c7, ref c8, ref c9, ref c10, ref c11, ref c12, ref c13, ref c14, ref c15, ref c16, ref c17, ref c18, ref c19, ref c20, ref c21, ref c22, ref c23, ref c24, ref c25, ref c26, ref c27, ref c28, ref c29, ref c30, ref c31,
                ref aLo, ref aHi, ref bLo, ref bHi, ref step);
        else
            CudaAsm.EmitRef(Descriptors + Issue + "}",
                ref c0, ref c1, ref c2, ref c3, ref c4, ref c5, ref c6, ref c7, ref c8, ref c9, ref c10, ref c11, ref c12, ref c13, ref c14, ref c15, ref c16, ref c17, ref c18, ref c19, ref c20, ref c21, ref c22, ref c23, ref c24, ref c25, ref c26, ref c27, ref c28, ref c29, ref c30, ref c31,
                ref aLo, ref aHi, ref bLo, ref bHi);
        return new Acc64x64(
            new Frag(c0.Value, c1.Value, c2.Value, c3.Value),
            new Frag(c4.Value, c5.Value, c6.Value, c7.Value),
            new Frag(c8.Value, c9.Value, c10.Value, c11.Value),
            new Frag(c12.Value, c13.Value, c14.Value, c15.Value),
            new Frag(c16.Value, c17.Value, c18.Value, c19.Value),
            new Frag(c20.Value, c21.Value, c22.Value, c23.Value),
            new Frag(c24.Value, c25.Value, c26.Value, c27.Value),
            new Frag(c28.Value, c29.Value, c30.Value, c31.Value));
    }
}
