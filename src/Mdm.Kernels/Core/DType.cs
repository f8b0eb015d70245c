namespace Mdm.Kernels;

/// <summary>Element types a tensor can hold. BF16 is stored as raw 16-bit patterns (see <see cref="BFloat16"/>).</summary>
public enum DType { F32, BF16 }

public static class DTypeExtensions
{
    public static int Size(this DType t) => t switch { DType.F32 => 4, DType.BF16 => 2, _ => throw new ArgumentOutOfRangeException(nameof(t)) };
    public static string Name(this DType t) => t switch { DType.F32 => "F32", DType.BF16 => "BF16", _ => t.ToString() };
}
