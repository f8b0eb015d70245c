using System.Buffers.Binary;
using System.IO.Compression;

namespace Mdm.Train.Data;

/// <summary>
/// A dependency-free PNG codec. The decoder reads colour types 0/2/3/4/6, bit depths 1/2/4/8 (gray, palette),
/// 8 and 16 (16 is rounded to 8), PLTE/tRNS, all five filters and Adam7 interlacing, checks every CRC, and returns
/// RGBA8. The encoder writes 8-bit RGB or RGBA with a per-row adaptive filter.
/// </summary>
public static class Png
{
    /// <summary>Images larger than this (16384 × 16384) are rejected before any pixel memory is allocated.</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>Decodes a PNG held in memory; <paramref name="source"/> names it in error messages.</summary>
    /// <exception cref="ImageFormatException">the data is not a valid, supported PNG (the only exception it throws).</exception>
    public static RgbaImage Decode(ReadOnlySpan<byte> file, string source = "<memory>") => PngDecoder.Decode(file, source);

    /// <summary>Reads and decodes a PNG file. I/O failures (missing file, permissions) stay <see cref="IOException"/>s.</summary>
    public static RgbaImage Load(string path) => Decode(File.ReadAllBytes(path), path);

    public static void Save(string path, RgbaImage image, bool withAlpha = true)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllBytes(path, Encode(image, withAlpha));
    }

    /// <summary>Encodes as 8-bit RGBA (colour type 6) or, dropping alpha, 8-bit RGB (colour type 2).</summary>
    public static byte[] Encode(RgbaImage image, bool withAlpha = true, CompressionLevel level = CompressionLevel.Optimal)
    {
        int channels = withAlpha ? 4 : 3;
        int rowBytes = image.Width * channels;
        var filtered = new byte[(long)image.Height * (rowBytes + 1)];
        var previous = new byte[rowBytes];
        var current = new byte[rowBytes];
        var candidate = new byte[rowBytes];
        for (int y = 0; y < image.Height; y++)
        {
            var src = image.Pixels.AsSpan(y * image.Width * 4, image.Width * 4);
            if (withAlpha) src.CopyTo(current);
            else for (int x = 0; x < image.Width; x++) src.Slice(x * 4, 3).CopyTo(current.AsSpan(x * 3));
            var outRow = filtered.AsSpan(y * (rowBytes + 1), rowBytes + 1);
            ChooseFilter(current, y > 0 ? previous : null, channels, outRow, candidate);
            (previous, current) = (current, previous);
        }

        using var file = new MemoryStream();
        file.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], image.Height);
        header[8] = 8;
        header[9] = (byte)(withAlpha ? 6 : 2);   // compression, filter and interlace methods stay 0
        WriteChunk(file, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, level, leaveOpen: true)) z.Write(filtered);
            var data = compressed.GetBuffer().AsSpan(0, (int)compressed.Length);
            const int maxChunk = 1 << 20;
            for (int at = 0; at < data.Length; at += maxChunk)
                WriteChunk(file, "IDAT", data.Slice(at, Math.Min(maxChunk, data.Length - at)));
        }
        WriteChunk(file, "IEND", []);
        return file.ToArray();
    }

    /// <summary>Writes length, type, data and CRC of one chunk.</summary>
    public static void WriteChunk(Stream stream, string type, ReadOnlySpan<byte> data)
    {
        if (type.Length != 4) throw new ArgumentException($"chunk type '{type}' must be 4 characters");
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        Span<byte> typeBytes = stackalloc byte[4];
        for (int i = 0; i < 4; i++) typeBytes[i] = (byte)type[i];
        stream.Write(typeBytes);
        stream.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.Append(Crc32.Compute(typeBytes), data));
        stream.Write(word);
    }

    /// <summary>
    /// Filters one row with each of the five filters and keeps the one with the smallest sum of |signed byte|,
    /// the usual heuristic (libpng's default) that makes deflate's job easy.
    /// </summary>
    static void ChooseFilter(ReadOnlySpan<byte> row, byte[]? up, int bpp, Span<byte> outRow, Span<byte> scratch)
    {
        long best = long.MaxValue;
        for (byte filter = 0; filter <= 4; filter++)
        {
            long cost = 0;
            for (int i = 0; i < row.Length; i++)
            {
                byte a = i >= bpp ? row[i - bpp] : (byte)0, b = up is null ? (byte)0 : up[i];
                byte c = i >= bpp && up is not null ? up[i - bpp] : (byte)0;
                byte predicted = filter switch { 0 => 0, 1 => a, 2 => b, 3 => (byte)((a + b) >> 1), _ => PngDecoder.Paeth(a, b, c) };
                byte v = (byte)(row[i] - predicted);
                scratch[i] = v;
                cost += v < 128 ? v : 256 - v;   // |v| read as a signed byte
            }
            if (cost < best)
            {
                best = cost;
                outRow[0] = filter;
                scratch[..row.Length].CopyTo(outRow[1..]);
            }
        }
    }
}
