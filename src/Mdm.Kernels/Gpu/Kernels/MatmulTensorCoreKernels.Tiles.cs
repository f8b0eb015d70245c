using System.Runtime.CompilerServices;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>A group's block tile of C (TileM × 128) and its K pipeline (TileK-deep slices, Stages of them in flight),
/// fixed per compiled kernel. The warps keep their 64×32 / 64×64 tiles, so a 64-row block has half the warps.</summary>
public interface IGemmTile
{
    /// <summary>Rows of C per group: 128 (two rows of warps) or 64 (one).</summary>
    int TileM { get; }
    /// <summary>K per pipeline stage: 64 or 32.</summary>
    int TileK { get; }
    /// <summary>Shared-memory stages: 3 (wait for all but 1 copy group) or 4 (all but 2).</summary>
    int Stages { get; }
}

/// <summary>128×128 tile, 64-deep slices, 3 stages (96 KB): the long-K default.</summary>
public struct Tile128x128K64 : IGemmTile { public readonly int TileM => 128; public readonly int TileK => 64; public readonly int Stages => 3; }

/// <summary>128×128 tile, 32-deep slices, 4 stages (64 KB): the first mma waits for a 16 KB stage instead of 32 KB,
/// and a K of 256 is 8 slices instead of 4, so the fill and drain are a smaller share of a short K loop.</summary>
public struct Tile128x128K32 : IGemmTile { public readonly int TileM => 128; public readonly int TileK => 32; public readonly int Stages => 4; }

/// <summary>64×128 tile, 32-deep slices, 4 stages (48 KB, 4 warps of 64×32): twice the groups of a 128×128 tile for
/// the same C, four resident per multiprocessor instead of two (one group's prologue and epilogue overlap three
/// others' main loops), and a finer last wave over the multiprocessors.</summary>
public struct Tile64x128K32 : IGemmTile { public readonly int TileM => 64; public readonly int TileK => 32; public readonly int Stages => 4; }

public static partial class MatmulTensorCoreKernels
{
    /// <summary>Threads of a group: 4 warps of 64×32 or 2 of 64×64 per 64 rows of the tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ThreadsFor(int tileM, bool wide) => tileM / 64 * (wide ? 2 : 4) * 32;

    /// <summary>Dynamic shared memory of a tile: its pipeline stages, or the bf16 epilogue's staged tile if larger.</summary>
    public static int SharedBytesFor(int tileM, int tileK, int stages) =>
        Math.Max(stages * (tileM + TileN) * tileK * 2, tileM * StagedRowBytes);

    /// <summary>log2 of 16-byte chunks per shared row (4, 8 or 16 chunks): the copy plans shift by it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int ChunkShift(int chunksPerRow) => chunksPerRow == 16 ? 4 : chunksPerRow == 8 ? 3 : 2;
}
