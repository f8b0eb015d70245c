using System.Runtime.CompilerServices;
using ILGPU.Runtime.Cuda;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// The inline-PTX building blocks of the tensor-core kernels (CUDA only; load such kernels with
/// IlgpuBackend.LoadWithPromotedDepots): mma.sync m16n8k16 bf16→f32, ldmatrix x4 (and .trans) from the dynamic shared
/// buffer, 16-byte cp.async with zero fill, and its group commit/wait. Every operand is 32 bits wide (ilgpu-notes §1);
/// fragments travel by value.
/// </summary>
public static class TensorCorePtx
{
    /// <summary>The four f32 accumulators of one m16n8 tile, in mma.sync's fragment order
    /// (rows g and g+8, columns 2·(lane%4) and +1).
    /// Passed and returned by value: a local whose address is taken stays in local memory (ptxas cannot promote it).</summary>
    public readonly struct Frag(float x, float y, float z, float w) { public readonly float X = x, Y = y, Z = z, W = w; }

    /// <summary>Four 32-bit fragment registers (bf16 pairs), as ldmatrix.x4 returns them.</summary>
    public readonly struct U4(uint x, uint y, uint z, uint w) { public readonly uint X = x, Y = y, Z = z, W = w; }

    // ---- inline PTX (every operand 32 bits wide: see ilgpu-notes §1) ---------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Frag Mma(Frag d, U4 a, uint b0, uint b1)
    {
        Ref<float> c0 = d.X, c1 = d.Y, c2 = d.Z, c3 = d.W;
        Input<uint> x0 = a.X, x1 = a.Y, x2 = a.Z, x3 = a.W, y0 = b0, y1 = b1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
            ref c0, ref c1, ref c2, ref c3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
        return new Frag(c0.Value, c1.Value, c2.Value, c3.Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static U4 LoadMatrix(int smemOffset)
    {
        Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef("{\n\t.reg .u32 sa;\n\tmov.u32 sa, __dyn_shared_alloca;\n\tadd.u32 sa, sa, %4;\n\t" +
                        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [sa];\n\t}",
            ref o0, ref o1, ref o2, ref o3, ref off);
        return new U4(o0.Value, o1.Value, o2.Value, o3.Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static U4 LoadMatrixTrans(int smemOffset)
    {
        Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
        Input<uint> off = (uint)smemOffset;
        CudaAsm.EmitRef("{\n\t.reg .u32 sa;\n\tmov.u32 sa, __dyn_shared_alloca;\n\tadd.u32 sa, sa, %4;\n\t" +
                        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [sa];\n\t}",
            ref o0, ref o1, ref o2, ref o3, ref off);
        return new U4(o0.Value, o1.Value, o2.Value, o3.Value);
    }

    /// <summary>cp.async of 16 bytes; <paramref name="srcBytes"/> = 0 writes 16 zero bytes and reads nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CopyAsync16(uint smemOffset, long src, uint srcBytes) =>
        CudaAsm.Emit("{\n\t.reg .u32 sa;\n\tmov.u32 sa, __dyn_shared_alloca;\n\tadd.u32 sa, sa, %0;\n\t" +
                     "cp.async.cg.shared.global [sa], [%1], 16, %2;\n\t}", smemOffset, src, srcBytes);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Commit() => CudaAsm.Emit("cp.async.commit_group;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WaitOneGroupPending() => CudaAsm.Emit("cp.async.wait_group 1;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WaitAll() => CudaAsm.Emit("cp.async.wait_group 0;");
}
