using System.Buffers.Binary;
using System.Text;
using Mdm.Model.Checkpoints;

namespace Mdm.Tests.Checkpoints;

/// <summary>Builds safetensors files byte by byte (header text + data), independently of the writer under test.</summary>
public static class SafeTensorsBytes
{
    public static byte[] File(string headerJson, ReadOnlySpan<byte> data, long? declaredHeaderLength = null) =>
        File(Encoding.UTF8.GetBytes(headerJson), data, declaredHeaderLength);

    public static byte[] File(ReadOnlySpan<byte> header, ReadOnlySpan<byte> data, long? declaredHeaderLength = null)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(declaredHeaderLength ?? header.Length));
        header.CopyTo(bytes.AsSpan(8));
        data.CopyTo(bytes.AsSpan(8 + header.Length));
        return bytes;
    }

    public static byte[] F32(params float[] values)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), values[i]);
        return b;
    }

    public static SafeTensorsFile Open(byte[] bytes, string name = "test.safetensors") =>
        SafeTensorsFile.Read(new MemoryStream(bytes, writable: false), name);

    /// <summary>Opens and reads every tensor every way it can be read: the full cost of "loading" a file.</summary>
    public static int LoadEverything(byte[] bytes, string name = "test.safetensors")
    {
        using var f = Open(bytes, name);
        int count = 0;
        foreach (var e in f.Entries)
        {
            Assert.That(f.ReadBytes(e.Name), Has.Length.EqualTo(e.ByteCount));
            Assert.That(f.ReadF32(e.Name), Has.Length.EqualTo(e.Numel));
            if (e.DType.IsInteger()) f.ReadInt64(e.Name);
            count++;
        }
        return count;
    }
}
