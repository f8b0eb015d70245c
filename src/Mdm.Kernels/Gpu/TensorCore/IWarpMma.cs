using ILGPU;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// The warp-level tensor-core primitives a kernel is written against. A kernel takes the implementation as a generic
/// struct type argument (<c>where TM : struct, IWarpMma&lt;TM&gt;</c>, bound once per kernel with
/// <see cref="Bind"/>), so ILGPU compiles one
/// specialisation per implementation: <see cref="PtxWarpMma"/> (inline PTX, CUDA) and <see cref="EmulatedWarpMma"/>
/// (plain ILGPU code, the CPU accelerator). Both hold every fragment element in the same lane and register, as the PTX
/// ISA documents for mma.m16n8k16 and ldmatrix.m8n8. Every call is made by all 32 lanes of a warp together.
/// Shared-memory operands are byte offsets into the kernel's dynamic shared buffer; global ones are device addresses.
/// </summary>
public interface IWarpMma<TSelf> where TSelf : struct, IWarpMma<TSelf>
{
    /// <summary>The primitives on the kernel's dynamic shared buffer. Call once per kernel with its one
    /// <c>SharedMemory.GetDynamic&lt;byte&gt;()</c> view: on the CPU accelerator every GetDynamic call is a buffer of its own.</summary>
    TSelf Bind(ArrayView<byte> shared);

    /// <summary>d + a·b for one m16n8k16 tile: a = A fragment (a0..a3), b0, b1 = B fragment, bf16 in, f32 accumulate.</summary>
    Frag Mma(Frag d, U4 a, uint b0, uint b1);

    /// <summary>ldmatrix.x1: lanes 0..7 give the row offsets of one 8×8 bf16 matrix.</summary>
    uint LoadMatrixX1(int smemOffset);
    /// <summary>ldmatrix.x2: lanes 0..15 give the row offsets of two matrices.</summary>
    U2 LoadMatrixX2(int smemOffset);
    /// <summary>ldmatrix.x4: lanes 0..31 give the row offsets of four matrices.</summary>
    U4 LoadMatrixX4(int smemOffset);
    /// <summary>ldmatrix.x1.trans: as <see cref="LoadMatrixX1"/>, each matrix transposed.</summary>
    uint LoadMatrixX1Trans(int smemOffset);
    U2 LoadMatrixX2Trans(int smemOffset);
    U4 LoadMatrixX4Trans(int smemOffset);

    /// <summary>cp.async of 16 bytes from a global address; <paramref name="srcBytes"/> = 0 writes 16 zero bytes and
    /// reads nothing. The copy is only guaranteed visible after a wait that covers its group and a barrier.</summary>
    void CopyAsync16(uint smemOffset, long src, uint srcBytes);
    /// <summary>One 16-byte global store (st.global.v4): <paramref name="dst"/> must be 16-byte aligned.</summary>
    void StoreGlobal16(long dst, U4 v);
    /// <summary>Closes the copies issued so far into one group.</summary>
    void Commit();
    /// <summary>Waits until at most one committed group is still in flight.</summary>
    void WaitOneGroupPending();
    /// <summary>Waits until at most two committed groups are still in flight (a 4-stage pipeline).</summary>
    void WaitTwoGroupsPending();
    /// <summary>Waits until every committed group has landed.</summary>
    void WaitAll();

    /// <summary>2^x, as the hardware's approximate ex2 (the emulation is exact to f32 rounding).</summary>
    float Exp2(float x);
    /// <summary>log2 x, as the hardware's approximate lg2.</summary>
    float Log2(float x);
    /// <summary>Two f32 → one bf16x2 register, rounded to nearest even, <paramref name="lo"/> in the low half.</summary>
    uint PackBF16(float lo, float hi);
}
