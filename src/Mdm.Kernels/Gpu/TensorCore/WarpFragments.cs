namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>The four f32 accumulators of one m16n8 tile, in mma.sync's fragment order (rows g and g+8 with
/// g = lane/4, columns 2·(lane%4) and +1). Passed and returned by value: a local whose address is taken stays in local
/// memory on CUDA (ptxas cannot promote it).</summary>
public readonly struct Frag(float x, float y, float z, float w) { public readonly float X = x, Y = y, Z = z, W = w; }

/// <summary>Four 32-bit fragment registers (bf16 pairs, the lower column or row in the low half), as ldmatrix.x4 returns them.</summary>
public readonly struct U4(uint x, uint y, uint z, uint w) { public readonly uint X = x, Y = y, Z = z, W = w; }

/// <summary>Two 32-bit fragment registers, as ldmatrix.x2 returns them.</summary>
public readonly struct U2(uint x, uint y) { public readonly uint X = x, Y = y; }
