using System.Runtime.CompilerServices;
using ILGPU;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// The warpgroup primitives in plain ILGPU code, for the CPU accelerator. Each thread computes exactly the accumulator
/// elements the hardware keeps in its registers (<see cref="Acc64x64"/>), reading A and B from the shared buffer
/// through the same descriptors (<see cref="MatrixDescriptor.ElementOffset"/>), so a kernel that builds wrong
/// descriptors or stores tiles in the wrong layout fails here too. The mma is synchronous: the fences, commit and wait
/// have nothing left to do, and the kernel's own barriers publish the tiles, as they must on the hardware.
/// </summary>
public readonly struct EmulatedWarpgroupMma(ArrayView<byte> shared) : IWarpgroupMma<EmulatedWarpgroupMma>
{
    readonly ArrayView<byte> shared = shared;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public EmulatedWarpgroupMma Bind(ArrayView<byte> kernelShared) => new(kernelShared);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void FenceSharedStores() { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Fence() { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit() { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitAll() { }

    public Acc64x64 MmaK64(Acc64x64 d, MatrixDescriptor a, MatrixDescriptor b, int stepBytes)
    {
        for (int s = 0; s < 4; s++) d = Mma(d, a.Advance(s * stepBytes), b.Advance(s * stepBytes));
        return d;
    }

    public Acc64x64 Mma(Acc64x64 d, MatrixDescriptor a, MatrixDescriptor b)
    {
        int thread = Group.IdxX & 127, lane = thread & 31;
        int row = (thread >> 5) * 16 + (lane >> 2), col = (lane & 3) * 2;
        return new Acc64x64(
            Block(d.N0, a, b, row, col), Block(d.N1, a, b, row, col + 8), Block(d.N2, a, b, row, col + 16), Block(d.N3, a, b, row, col + 24),
            Block(d.N4, a, b, row, col + 32), Block(d.N5, a, b, row, col + 40), Block(d.N6, a, b, row, col + 48), Block(d.N7, a, b, row, col + 56));
    }

    /// <summary>One n8 block of this thread: rows <paramref name="row"/> and +8, columns <paramref name="col"/> and +1.</summary>
    Frag Block(Frag d, MatrixDescriptor a, MatrixDescriptor b, int row, int col) =>
        new(d.X + Dot(a, b, row, col), d.Y + Dot(a, b, row, col + 1), d.Z + Dot(a, b, row + 8, col), d.W + Dot(a, b, row + 8, col + 1));

    float Dot(MatrixDescriptor a, MatrixDescriptor b, int row, int col)
    {
        var halves = shared.Cast<ushort>();
        float sum = 0f;
        for (int k = 0; k < 16; k++)
            sum += Widen(halves[a.ElementOffset(row, k) >> 1]) * Widen(halves[b.ElementOffset(col, k) >> 1]);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Widen(ushort bits) => Interop.IntAsFloat((uint)bits << 16);
}
