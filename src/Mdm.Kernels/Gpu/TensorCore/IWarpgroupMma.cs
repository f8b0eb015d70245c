using ILGPU;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// The warpgroup-level (Hopper, sm_90a) tensor-core primitives: wgmma.mma_async m64n64k16 bf16→f32 with both operands
/// read from shared memory through <see cref="MatrixDescriptor"/>s, and the fences and groups around it. A warpgroup
/// is 4 consecutive warps (128 threads, aligned to a multiple of 128 in the group); every call is made by all of them
/// together. Like <see cref="IWarpMma{TSelf}"/> a kernel takes the implementation as a generic struct argument:
/// <see cref="PtxWarpgroupMma"/> (inline PTX, CUDA on sm_90 only, loaded through the sm_90a patch) and
/// <see cref="EmulatedWarpgroupMma"/> (plain ILGPU code, the CPU accelerator), which hold every accumulator element in
/// the same thread and register, as the PTX ISA's wgmma D-fragment table says (<see cref="Acc64x64"/>).
/// </summary>
public interface IWarpgroupMma<TSelf> where TSelf : struct, IWarpgroupMma<TSelf>
{
    /// <summary>The primitives on the kernel's one dynamic shared buffer (descriptor addresses are offsets into it).</summary>
    TSelf Bind(ArrayView<byte> shared);

    /// <summary>Shared-memory stores made by ordinary instructions become visible to wgmma (fence.proxy.async). Call
    /// after storing operand tiles and before the barrier that publishes them.</summary>
    void FenceSharedStores();
    /// <summary>wgmma.fence: orders the accumulators' register accesses before the next <see cref="Mma"/>.</summary>
    void Fence();
    /// <summary>d + a·b for a 64×16 A and a 16×64 B, both K-major in shared memory (A as 64 rows of k, B as 64
    /// columns of k), f32 accumulate. Asynchronous: read <paramref name="d"/>'s result only after <see cref="WaitAll"/>.</summary>
    Acc64x64 Mma(Acc64x64 d, MatrixDescriptor a, MatrixDescriptor b);
    /// <summary>One synchronous K-64 step: fence, four <see cref="Mma"/>s, each moving both descriptors
    /// <paramref name="stepBytes"/> further than the one before, commit and wait, as one unit (on CUDA one asm block,
    /// so no other instruction touches the accumulators while the four are in flight and ptxas need not serialise them).</summary>
    Acc64x64 MmaK64(Acc64x64 d, MatrixDescriptor a, MatrixDescriptor b, int stepBytes);
    /// <summary>Closes the mma issued since the last commit into one group.</summary>
    void Commit();
    /// <summary>Waits until every committed group has finished (results readable, operands free to overwrite).</summary>
    void WaitAll();
}

/// <summary>A warpgroup's 64×64 f32 accumulator: per thread, <c>Nj</c> is the n8 block j (columns 8j..8j+7), in
/// mma.sync's C order within warp w = thread/32 of the warpgroup: X, Y = row 16w + g, columns 8j + 2t and +1; Z, W =
/// row 16w + g + 8 (g = lane/4, t = lane%4). Passed by value, like <see cref="Frag"/>.</summary>
public readonly struct Acc64x64(Frag n0, Frag n1, Frag n2, Frag n3, Frag n4, Frag n5, Frag n6, Frag n7)
{
    public readonly Frag N0 = n0, N1 = n1, N2 = n2, N3 = n3, N4 = n4, N5 = n5, N6 = n6, N7 = n7;
}

/// <summary>How a descriptor's matrix is swizzled in shared memory (the descriptor's bits 62–63).</summary>
public enum WgmmaSwizzle
{
    /// <summary>No swizzle ("interleave"): 8×16-byte core matrices, LBO apart along K and SBO apart along M/N.</summary>
    None = 0,
    /// <summary>Rows of 128 bytes, 16-byte chunk c of row r stored at chunk c ^ (r % 8); SBO apart per 8 rows.</summary>
    Bytes128 = 1,
    Bytes64 = 2,
    Bytes32 = 3,
}

/// <summary>
/// A wgmma shared-memory matrix descriptor as two 32-bit halves (inline-PTX operands stay 32 bits wide): bits 0–13 the
/// start address, 16–29 the leading dimension byte offset (between core matrices along K), 32–45 the stride dimension
/// byte offset (between 8-row groups along M or N), each in 16-byte units, 62–63 the swizzle mode; base offset 0.
/// Addresses here are byte offsets into the kernel's dynamic shared buffer; <see cref="PtxWarpgroupMma"/> adds the
/// buffer's shared-window address (so the buffer must sit on a 1024-byte boundary for the swizzled modes: the sm_90a
/// patch aligns it).
/// </summary>
public readonly struct MatrixDescriptor(uint lo, uint hi)
{
    public readonly uint Lo = lo, Hi = hi;

    /// <summary>The descriptor of a matrix at <paramref name="startOffset"/> (16-byte aligned, under 256 KB).</summary>
    public static MatrixDescriptor Create(int startOffset, int leadingByteOffset, int strideByteOffset, WgmmaSwizzle swizzle) =>
        new(Field(startOffset) | (Field(leadingByteOffset) << 16), Field(strideByteOffset) | ((uint)swizzle << 30));

    static uint Field(int bytes) => ((uint)bytes >> 4) & 0x3FFF;

    public int StartOffset => (int)(Lo & 0x3FFF) << 4;
    public int LeadingByteOffset => (int)((Lo >> 16) & 0x3FFF) << 4;
    public int StrideByteOffset => (int)(Hi & 0x3FFF) << 4;
    public WgmmaSwizzle Swizzle => (WgmmaSwizzle)(Hi >> 30);

    /// <summary>The descriptor moved <paramref name="bytes"/> further (a k16 step, a pipeline stage).</summary>
    public MatrixDescriptor Advance(int bytes) => new(Lo + ((uint)bytes >> 4), Hi);

    /// <summary>The byte offset of element (row, k) of a K-major bf16 matrix this descriptor points at: row = m (A) or
    /// n (B), k = 0..15. Unswizzled, core matrices are 8 rows of 16 bytes; a swizzled row is 32, 64 or 128 bytes wide
    /// and holds all 16 k of one instruction (LBO unused), and the swizzle XORs the 16-byte chunk bits (4..) of the
    /// address with its bits 7.. (1, 2 or 3 bits), so the pattern follows absolute addresses.</summary>
    public int ElementOffset(int row, int k)
    {
        var swizzle = Swizzle;
        if (swizzle == WgmmaSwizzle.None)
            return StartOffset + (row >> 3) * StrideByteOffset + (row & 7) * 16 + (k >> 3) * LeadingByteOffset + (k & 7) * 2;
        int bits = swizzle == WgmmaSwizzle.Bytes128 ? 3 : swizzle == WgmmaSwizzle.Bytes64 ? 2 : 1;
        int logical = StartOffset + (row >> 3) * StrideByteOffset + (row & 7) * (16 << bits) + k * 2;
        return logical ^ (((logical >> 7) & ((1 << bits) - 1)) << 4);
    }
}
