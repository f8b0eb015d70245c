using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// The tensor-core primitives as inline PTX (CUDA only; load such kernels with IlgpuBackend.LoadWithPromotedDepots,
/// which turns EmitRef's per-operand local depots back into registers). Every operand is 32 bits wide: a 64-bit
/// EmitRef operand leaves a dead local store behind. Shared offsets are added to ILGPU's dynamic shared symbol
/// (__dyn_shared_alloca) inside the asm, the one shared address inline PTX can name.
/// </summary>
public readonly struct PtxWarpMma : IWarpMma<PtxWarpMma>
{
    const string SharedAddress = "{\n\t.reg .u32 sa;\n\tmov.u32 sa, __dyn_shared_alloca;\n\tadd.u32 sa, sa, ";

    /// <summary>Nothing to keep: the asm names the dynamic shared symbol itself.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PtxWarpMma Bind(ArrayView<byte> shared) => this;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Frag Mma(Frag d, U4 a, uint b0, uint b1)
    {
        Ref<float> c0 = d.X, c1 = d.Y, c2 = d.Z, c3 = d.W;
        Input<uint> x0 = a.X, x1 = a.Y, x2 = a.Z, x3 = a.W, y0 = b0, y1 = b1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
            ref c0, ref c1, ref c2, ref c3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
        return new Frag(c0.Value, c1.Value, c2.Value, c3.Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint LoadMatrixX1(int smemOffset)
    {
        Output<uint> o0 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef(SharedAddress + "%1;\n\tldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [sa];\n\t}", ref o0, ref off);
        return o0.Value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint LoadMatrixX1Trans(int smemOffset)
    {
        Output<uint> o0 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef(SharedAddress + "%1;\n\tldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [sa];\n\t}", ref o0, ref off);
        return o0.Value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U2 LoadMatrixX2(int smemOffset)
    {
        Output<uint> o0 = default, o1 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef(SharedAddress + "%2;\n\tldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [sa];\n\t}", ref o0, ref o1, ref off);
        return new U2(o0.Value, o1.Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U2 LoadMatrixX2Trans(int smemOffset)
    {
        Output<uint> o0 = default, o1 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef(SharedAddress + "%2;\n\tldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [sa];\n\t}", ref o0, ref o1, ref off);
        return new U2(o0.Value, o1.Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U4 LoadMatrixX4(int smemOffset)
    {
        Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef(SharedAddress + "%4;\n\tldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [sa];\n\t}",
            ref o0, ref o1, ref o2, ref o3, ref off);
        return new U4(o0.Value, o1.Value, o2.Value, o3.Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U4 LoadMatrixX4Trans(int smemOffset)
    {
        Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef(SharedAddress + "%4;\n\tldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [sa];\n\t}",
            ref o0, ref o1, ref o2, ref o3, ref off);
        return new U4(o0.Value, o1.Value, o2.Value, o3.Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyAsync16(uint smemOffset, long src, uint srcBytes) =>
        CudaAsm.Emit(SharedAddress + "%0;\n\tcp.async.cg.shared.global [sa], [%1], 16, %2;\n\t}", smemOffset, src, srcBytes);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StoreGlobal16(long dst, U4 v) =>
        CudaAsm.Emit("st.global.v4.u32 [%0], {%1,%2,%3,%4};", dst, v.X, v.Y, v.Z, v.W);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit() => CudaAsm.Emit("cp.async.commit_group;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitOneGroupPending() => CudaAsm.Emit("cp.async.wait_group 1;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitTwoGroupsPending() => CudaAsm.Emit("cp.async.wait_group 2;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitAll() => CudaAsm.Emit("cp.async.wait_group 0;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Exp2(float x)
    {
        CudaAsm.Emit("ex2.approx.ftz.f32 %0, %1;", out float y, x);
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Log2(float x)
    {
        CudaAsm.Emit("lg2.approx.ftz.f32 %0, %1;", out float y, x);
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint PackBF16(float lo, float hi)
    {
        CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out uint packed, hi, lo);
        return packed;
    }
}
