using System.Buffers.Binary;
using System.IO.Compression;

namespace Mdm.Train.Data;

/// <summary>Unsigned-byte images from an IDX file: <see cref="Count"/> images of <see cref="Rows"/> × <see cref="Columns"/>.</summary>
public sealed record IdxImages(int Count, int Rows, int Columns, byte[] Pixels)
{
    public ReadOnlySpan<byte> Image(int index) => Pixels.AsSpan(index * Rows * Columns, Rows * Columns);
}

/// <summary>
/// Reader for the IDX files of MNIST and Fashion-MNIST (big-endian header: 0, 0, type, rank, then one u32 per axis),
/// plain or gzip-compressed (recognised by its magic bytes). Only unsigned bytes (type 0x08) are used by these sets.
/// Every problem is a <see cref="DataFormatException"/> naming the file.
/// </summary>
public static class Idx
{
    const long MaxDeflateRatio = 1032;

    public static IdxImages ReadImages(string path) => ReadImages(File.ReadAllBytes(path), path);

    public static IdxImages ReadImages(byte[] file, string source)
    {
        var (dims, data) = Read(file, source, rank: 3);
        return new IdxImages(dims[0], dims[1], dims[2], data);
    }

    public static byte[] ReadLabels(string path) => ReadLabels(File.ReadAllBytes(path), path);

    public static byte[] ReadLabels(byte[] file, string source) => Read(file, source, rank: 1).Data;

    /// <summary>Writes an uncompressed IDX file of unsigned bytes (used for tests and for exporting subsets).</summary>
    public static byte[] Write(ReadOnlySpan<int> dims, ReadOnlySpan<byte> data)
    {
        long n = 1;
        foreach (int d in dims) n *= d;
        if (n != data.Length) throw new ArgumentException($"dims [{string.Join(", ", dims.ToArray())}] need {n} bytes, got {data.Length}");
        var file = new byte[4 + 4 * dims.Length + data.Length];
        file[2] = 0x08;
        file[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(file.AsSpan(4 + 4 * i), dims[i]);
        data.CopyTo(file.AsSpan(4 + 4 * dims.Length));
        return file;
    }

    /// <summary>
    /// GZipStream stops silently at a missing trailer, so compare the trailer (CRC-32 and length of the content,
    /// little-endian) with what was read: a cut or damaged file is caught. IDX .gz files are single-member.
    /// </summary>
    static void CheckGzipTrailer(byte[] file, byte[] header, byte[] data, string source)
    {
        if (file.Length < 18) throw new DataFormatException(source, "gzip file too short for its header and trailer");
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(file.Length - 8));
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(file.Length - 4));
        uint actualSize = (uint)(header.Length + data.LongLength);
        uint actualCrc = Crc32.Append(Crc32.Compute(header), data);
        if (crc != actualCrc || size != actualSize)
            throw new DataFormatException(source, $"gzip trailer (CRC 0x{crc:X8}, {size} bytes) does not match the content " +
                                                  $"(CRC 0x{actualCrc:X8}, {actualSize} bytes): the file is truncated or corrupt");
    }

    static (int[] Dims, byte[] Data) Read(byte[] file, string source, int rank)
    {
        bool gzip = file.Length >= 2 && file[0] == 0x1F && file[1] == 0x8B;
        try
        {
            using Stream stream = gzip ? new GZipStream(new MemoryStream(file), CompressionMode.Decompress) : new MemoryStream(file);
            var header = new byte[4 + 4 * rank];
            int got = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
            if (got < 4) throw new DataFormatException(source, $"file ends after {got} bytes, before the IDX magic number");
            if (header[0] != 0 || header[1] != 0)
                throw new DataFormatException(source, $"not an IDX file (magic starts 0x{header[0]:X2} 0x{header[1]:X2}, expected 0x00 0x00)");
            if (header[2] != 0x08)
                throw new DataFormatException(source, $"IDX element type 0x{header[2]:X2} is not supported (only 0x08, unsigned byte)");
            if (header[3] != rank)
                throw new DataFormatException(source, $"IDX file has {header[3]} dimensions, expected {rank} ({(rank == 3 ? "images" : "labels")})");
            if (got < header.Length) throw new DataFormatException(source, $"header truncated: {got} of {header.Length} bytes");

            var dims = new int[rank];
            long count = 1;
            for (int i = 0; i < rank; i++)
            {
                uint d = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4 + 4 * i));
                if (d == 0 || d > int.MaxValue) throw new DataFormatException(source, $"dimension {i} is {d}");
                dims[i] = (int)d;
                count *= d;
                if (count > Array.MaxLength) throw new DataFormatException(source, $"dimensions [{string.Join(", ", dims[..(i + 1)])}] are too large");
            }
            long available = gzip ? file.LongLength * MaxDeflateRatio : file.LongLength - header.Length;
            if (count > available)
                throw new DataFormatException(source, gzip
                    ? $"dimensions [{string.Join(", ", dims)}] need {count} data bytes, more than a {file.Length}-byte gzip file can hold"
                    : $"truncated: dimensions [{string.Join(", ", dims)}] need {count} data bytes, the file holds {available}");

            var data = new byte[count];
            got = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (got < count) throw new DataFormatException(source, $"truncated: dimensions [{string.Join(", ", dims)}] need {count} data bytes, found {got}");
            if (stream.ReadByte() >= 0)
                throw new DataFormatException(source, $"file is longer than dimensions [{string.Join(", ", dims)}] imply ({count} data bytes)");
            if (gzip) CheckGzipTrailer(file, header, data, source);
            return (dims, data);
        }
        // zlib reports bad data as InvalidDataException, some states as ZLibException (an IOException): both mean corrupt.
        catch (Exception e) when (e is InvalidDataException or IOException) { throw new DataFormatException(source, $"corrupt gzip data ({e.Message})", e); }
    }
}
