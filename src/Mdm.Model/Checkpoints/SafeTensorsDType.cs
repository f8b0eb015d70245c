using System.Buffers.Binary;
using Mdm.Kernels;

namespace Mdm.Model.Checkpoints;

/// <summary>
/// Element types of the safetensors format, named as on disk. The declaration order is the reference
/// implementation's (increasing alignment); writers sort tensors by it, descending, so every tensor stays aligned.
/// </summary>
public enum SafeTensorsDType { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 }

public static class SafeTensorsDTypeExtensions
{
    public static int Size(this SafeTensorsDType t) => t switch
    {
        SafeTensorsDType.BOOL or SafeTensorsDType.U8 or SafeTensorsDType.I8 or SafeTensorsDType.F8_E5M2 or SafeTensorsDType.F8_E4M3 => 1,
        SafeTensorsDType.I16 or SafeTensorsDType.U16 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 => 2,
        SafeTensorsDType.I32 or SafeTensorsDType.U32 or SafeTensorsDType.F32 => 4,
        SafeTensorsDType.F64 or SafeTensorsDType.I64 or SafeTensorsDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a safetensors dtype"),
    };

    public static string Name(this SafeTensorsDType t) => t.ToString();

    public static bool IsInteger(this SafeTensorsDType t) => t is SafeTensorsDType.BOOL or SafeTensorsDType.U8 or SafeTensorsDType.I8
        or SafeTensorsDType.I16 or SafeTensorsDType.U16 or SafeTensorsDType.I32 or SafeTensorsDType.U32 or SafeTensorsDType.I64 or SafeTensorsDType.U64;

    /// <summary>The on-disk name → dtype; false for names this reader does not know (e.g. newer 4/6-bit floats).</summary>
    public static bool TryParse(string name, out SafeTensorsDType dtype)
    {
        foreach (var t in Enum.GetValues<SafeTensorsDType>())
            if (t.ToString() == name) { dtype = t; return true; }
        dtype = default;
        return false;
    }

    /// <summary>The safetensors dtype that stores a tensor of this engine dtype unchanged.</summary>
    public static SafeTensorsDType ToSafeTensors(this DType t) => t switch
    {
        DType.F32 => SafeTensorsDType.F32,
        DType.BF16 => SafeTensorsDType.BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "no safetensors equivalent"),
    };
}

/// <summary>Little-endian element bytes of any safetensors dtype widened to float (exact except F64 and 64/32-bit integers, which round).</summary>
public static class SafeTensorsConvert
{
    public static void ToF32(SafeTensorsDType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int size = dtype.Size();
        if (src.Length != dst.Length * size)
            throw new ArgumentException($"SafeTensorsConvert.ToF32: {src.Length} bytes of {dtype.Name()} do not make {dst.Length} elements");
        for (int i = 0; i < dst.Length; i++)
        {
            var e = src.Slice(i * size, size);
            dst[i] = dtype switch
            {
                SafeTensorsDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(e),
                SafeTensorsDType.BF16 => BFloat16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(e)),
                SafeTensorsDType.F16 => (float)BinaryPrimitives.ReadHalfLittleEndian(e),
                SafeTensorsDType.F64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(e),
                SafeTensorsDType.F8_E5M2 => (float)BitConverter.UInt16BitsToHalf((ushort)(e[0] << 8)),
                SafeTensorsDType.F8_E4M3 => Float8E4M3(e[0]),
                SafeTensorsDType.BOOL => e[0] != 0 ? 1f : 0f,
                SafeTensorsDType.U8 => e[0],
                SafeTensorsDType.I8 => (sbyte)e[0],
                SafeTensorsDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(e),
                SafeTensorsDType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(e),
                SafeTensorsDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(e),
                SafeTensorsDType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(e),
                SafeTensorsDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(e),
                SafeTensorsDType.U64 => BinaryPrimitives.ReadUInt64LittleEndian(e),
                _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
            };
        }
    }

    /// <summary>Integer dtypes widened to long exactly (U64 above long.MaxValue is an error).</summary>
    public static void ToInt64(SafeTensorsDType dtype, ReadOnlySpan<byte> src, Span<long> dst)
    {
        if (!dtype.IsInteger()) throw new ArgumentException($"SafeTensorsConvert.ToInt64: {dtype.Name()} is not an integer dtype");
        int size = dtype.Size();
        if (src.Length != dst.Length * size)
            throw new ArgumentException($"SafeTensorsConvert.ToInt64: {src.Length} bytes of {dtype.Name()} do not make {dst.Length} elements");
        for (int i = 0; i < dst.Length; i++)
        {
            var e = src.Slice(i * size, size);
            dst[i] = dtype switch
            {
                SafeTensorsDType.BOOL => e[0] != 0 ? 1 : 0,
                SafeTensorsDType.U8 => e[0],
                SafeTensorsDType.I8 => (sbyte)e[0],
                SafeTensorsDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(e),
                SafeTensorsDType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(e),
                SafeTensorsDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(e),
                SafeTensorsDType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(e),
                SafeTensorsDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(e),
                _ => checked((long)BinaryPrimitives.ReadUInt64LittleEndian(e)),
            };
        }
    }

    /// <summary>OCP FP8 E4M3 ("fn"): bias 7, no infinities, S.1111.111 is NaN.</summary>
    static float Float8E4M3(byte b)
    {
        int sign = b >> 7, exponent = (b >> 3) & 0xF, mantissa = b & 7;
        if (exponent == 15 && mantissa == 7) return float.NaN;
        float magnitude = exponent == 0 ? mantissa / 8f * MathF.Pow(2, -6) : (1 + mantissa / 8f) * MathF.Pow(2, exponent - 7);
        return sign == 1 ? -magnitude : magnitude;
    }
}
