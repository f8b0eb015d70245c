using System.Buffers.Binary;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Mdm.Model.Checkpoints;

/// <summary>CRC-32C (Castagnoli, as iSCSI and ext4 use): the checkpoint checksum. SSE4.2 / ARM CRC instructions when present.</summary>
public static class Crc32C
{
    const uint Polynomial = 0x82F63B78u;   // reflected
    static readonly uint[] table = BuildTable();

    static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? Polynomial ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>Continues a running CRC; start with <c>0</c> and feed the pieces in order.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        if (Sse42.X64.IsSupported)
            for (; data.Length >= 8; data = data[8..]) c = (uint)Sse42.X64.Crc32(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
        else if (Crc32.Arm64.IsSupported)
            for (; data.Length >= 8; data = data[8..]) c = Crc32.Arm64.ComputeCrc32C(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
        foreach (byte b in data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>A write-only stream that only checksums what passes through it.</summary>
    public sealed class HashingStream : Stream
    {
        public uint Value { get; private set; }
        public long Length64 { get; private set; }
        public override void Write(ReadOnlySpan<byte> buffer) { Value = Append(Value, buffer); Length64 += buffer.Length; }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void WriteByte(byte value) => Write([value]);
        public override void Flush() { }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Length64;
        public override long Position { get => Length64; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
