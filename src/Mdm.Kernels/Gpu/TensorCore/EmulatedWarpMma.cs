using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// The tensor-core primitives in plain ILGPU code, for the CPU accelerator: the same lane and register holds the same
/// fragment element as on the hardware, so a kernel written against <see cref="IWarpMma{TSelf}"/> computes the same
/// thing (up to f32 summation order inside one mma). Lanes trade registers and row offsets through a per-warp scratch
/// area in static shared memory between two warp barriers (a barrier is an OS-thread rendezvous there, and one
/// exchange costs two where shuffles would cost one each per value). cp.async copies at once, so commit and wait have
/// nothing left to do. Global addresses are read as host pointers, which is what the CPU accelerator's buffers are.
/// Groups of at most <see cref="MaxWarps"/> warps; keep emulated shapes to a tile or two.
/// </summary>
public readonly struct EmulatedWarpMma(ArrayView<byte> shared, ArrayView<uint> scratch) : IWarpMma<EmulatedWarpMma>
{
    public const int MaxWarps = 8;
    const int LaneWords = 6;   // a0..a3, b0, b1 for mma; the row offset for ldmatrix

    readonly ArrayView<byte> shared = shared;
    readonly ArrayView<uint> scratch = scratch;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public EmulatedWarpMma Bind(ArrayView<byte> kernelShared) =>
        new(kernelShared, SharedMemory.Allocate<uint>(MaxWarps * 32 * LaneWords));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    int LaneSlot(int lane) => (Warp.WarpIdx * 32 + lane) * LaneWords;

    /// <summary>Per lane: g = lane / 4 picks the row (A, C) or column (B); t = lane % 4 the pair of k (A, B) or
    /// columns (C). A's a0..a3 = (g, 2t..), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..); B's b0, b1 = (2t.., g), (2t+8.., g).
    /// Lane 4g+q holds the k pair q of row g of A and of column g of B.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Frag Mma(Frag d, U4 a, uint b0, uint b1)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3, own = LaneSlot(lane);
        scratch[own] = a.X; scratch[own + 1] = a.Y; scratch[own + 2] = a.Z; scratch[own + 3] = a.W;
        scratch[own + 4] = b0; scratch[own + 5] = b1;
        Warp.Barrier();
        float r0c0 = d.X, r0c1 = d.Y, r1c0 = d.Z, r1c1 = d.W;
        for (int q = 0; q < 4; q++)
        {
            int aSlot = LaneSlot(4 * g + q), bSlot0 = LaneSlot(8 * t + q), bSlot1 = LaneSlot(8 * t + 4 + q);   // columns 2t, 2t+1
            uint aLo0 = scratch[aSlot], aLo1 = scratch[aSlot + 1], aHi0 = scratch[aSlot + 2], aHi1 = scratch[aSlot + 3];
            uint bLo0 = scratch[bSlot0 + 4], bHi0 = scratch[bSlot0 + 5], bLo1 = scratch[bSlot1 + 4], bHi1 = scratch[bSlot1 + 5];
            r0c0 += Dot2(aLo0, bLo0) + Dot2(aHi0, bHi0);
            r0c1 += Dot2(aLo0, bLo1) + Dot2(aHi0, bHi1);
            r1c0 += Dot2(aLo1, bLo0) + Dot2(aHi1, bHi0);
            r1c1 += Dot2(aLo1, bLo1) + Dot2(aHi1, bHi1);
        }
        Warp.Barrier();   // the scratch is free again
        return new Frag(r0c0, r0c1, r1c0, r1c1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Dot2(uint x, uint y) => Low(x) * Low(y) + High(x) * High(y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Low(uint pair) => Interop.IntAsFloat(pair << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float High(uint pair) => Interop.IntAsFloat(pair & 0xFFFF_0000u);

    // ldmatrix: lane 8j + r gives the offset of row r of matrix j. Without .trans lane (4g + t) receives row g, columns
    // 2t and 2t+1 of each matrix; with .trans it receives column g, rows 2t and 2t+1.

    /// <summary>Publishes each lane's row offset; read them with <see cref="RowOffset"/>, then <see cref="Warp.Barrier"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void PublishOffset(int smemOffset)
    {
        scratch[LaneSlot(Warp.LaneIdx)] = (uint)smemOffset;
        Warp.Barrier();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    int RowOffset(int matrix, int row) => (int)scratch[LaneSlot(8 * matrix + row)];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    uint Row(int matrix)
    {
        int lane = Warp.LaneIdx;
        return shared.Cast<uint>()[(RowOffset(matrix, lane >> 2) >> 2) + (lane & 3)];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    uint Column(int matrix)
    {
        int lane = Warp.LaneIdx, t = lane & 3;
        var halves = shared.Cast<ushort>();
        return halves[(RowOffset(matrix, 2 * t) >> 1) + (lane >> 2)] | ((uint)halves[(RowOffset(matrix, 2 * t + 1) >> 1) + (lane >> 2)] << 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint LoadMatrixX1(int smemOffset)
    {
        PublishOffset(smemOffset);
        uint r = Row(0);
        Warp.Barrier();
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U2 LoadMatrixX2(int smemOffset)
    {
        PublishOffset(smemOffset);
        var r = new U2(Row(0), Row(1));
        Warp.Barrier();
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U4 LoadMatrixX4(int smemOffset)
    {
        PublishOffset(smemOffset);
        var r = new U4(Row(0), Row(1), Row(2), Row(3));
        Warp.Barrier();
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint LoadMatrixX1Trans(int smemOffset)
    {
        PublishOffset(smemOffset);
        uint r = Column(0);
        Warp.Barrier();
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U2 LoadMatrixX2Trans(int smemOffset)
    {
        PublishOffset(smemOffset);
        var r = new U2(Column(0), Column(1));
        Warp.Barrier();
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public U4 LoadMatrixX4Trans(int smemOffset)
    {
        PublishOffset(smemOffset);
        var r = new U4(Column(0), Column(1), Column(2), Column(3));
        Warp.Barrier();
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void CopyAsync16(uint smemOffset, long src, uint srcBytes)
    {
        byte* from = (byte*)src;
        for (int i = 0; i < 16; i++) shared[(int)smemOffset + i] = i < srcBytes ? from[i] : (byte)0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void StoreGlobal16(long dst, U4 v)
    {
        uint* to = (uint*)dst;
        to[0] = v.X; to[1] = v.Y; to[2] = v.Z; to[3] = v.W;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit() { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitOneGroupPending() { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitTwoGroupsPending() { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitAll() { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Exp2(float x) => XMath.Exp2(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Log2(float x) => XMath.Log2(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint PackBF16(float lo, float hi) =>
        BFloat16.FromBits((uint)Interop.FloatAsInt(lo)) | ((uint)BFloat16.FromBits((uint)Interop.FloatAsInt(hi)) << 16);
}
