using System.Buffers.Binary;
using System.IO.Compression;

namespace Mdm.Train.Data;

/// <summary>
/// Reads a whole PNG file held in memory. Every problem becomes an <see cref="ImageFormatException"/>; memory is
/// bounded by <see cref="Png.MaxPixels"/> and by the size of the compressed data (deflate expands at most ~1032×).
/// </summary>
sealed class PngDecoder
{
    const long MaxDeflateRatio = 1032;
    static ReadOnlySpan<byte> Signature => [137, 80, 78, 71, 13, 10, 26, 10];

    readonly string source;
    int width, height, bitDepth, colourType;
    bool interlaced, seenHeader, seenIdat, idatEnded;
    byte[]? palette;                 // RGBA per entry
    int[]? transparentKey;           // gray (1 value) or RGB (3 values) at the file's bit depth
    readonly List<(int Offset, int Length)> idat = [];

    PngDecoder(string source) => this.source = source;

    public static RgbaImage Decode(ReadOnlySpan<byte> file, string source)
    {
        var decoder = new PngDecoder(source);
        decoder.ReadChunks(file);
        return decoder.DecodeImage(file);
    }

    ImageFormatException Error(string problem, Exception? inner = null) => new(source, problem, inner);

    int Channels => colourType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
    int BitsPerPixel => Channels * bitDepth;

    void ReadChunks(ReadOnlySpan<byte> file)
    {
        if (file.Length < 8) throw Error($"file is {file.Length} bytes, too short for a PNG signature");
        if (!file[..8].SequenceEqual(Signature)) throw Error("not a PNG file (bad signature)");
        int pos = 8;
        while (true)
        {
            if (file.Length - pos < 12) throw Error($"truncated: chunk header at byte {pos} needs 12 bytes, {file.Length - pos} left (no IEND)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(file[pos..]);
            var typeBytes = file.Slice(pos + 4, 4);
            string type = ChunkName(typeBytes);
            if (length > int.MaxValue) throw Error($"chunk '{type}' at byte {pos} has impossible length {length}");
            if (length > file.Length - pos - 12)
                throw Error($"truncated: chunk '{type}' at byte {pos} declares {length} bytes, {file.Length - pos - 12} left");
            var data = file.Slice(pos + 8, (int)length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(file[(pos + 8 + (int)length)..]);
            uint actual = Crc32.Append(Crc32.Compute(typeBytes), data);
            if (stored != actual) throw Error($"CRC mismatch in chunk '{type}' at byte {pos} (stored 0x{stored:X8}, computed 0x{actual:X8})");
            if (!seenHeader && type != "IHDR") throw Error($"first chunk is '{type}', expected IHDR");
            if (seenIdat && type != "IDAT") idatEnded = true;
            switch (type)
            {
                case "IHDR": ReadHeader(data); break;
                case "PLTE": ReadPalette(data); break;
                case "tRNS": ReadTransparency(data); break;
                case "IDAT":
                    if (idatEnded) throw Error("IDAT chunks are not consecutive");
                    if (colourType == 3 && palette is null) throw Error("palette image has no PLTE before IDAT");
                    seenIdat = true;
                    idat.Add((pos + 8, (int)length));
                    break;
                case "IEND":
                    if (!seenIdat) throw Error("no IDAT chunk before IEND");
                    return;
                default:
                    if ((typeBytes[0] & 0x20) == 0) throw Error($"unknown critical chunk '{type}'");
                    break;   // ancillary chunks (text, gamma, ...) carry nothing we use
            }
            pos += 12 + (int)length;
        }
    }

    static string ChunkName(ReadOnlySpan<byte> b)
    {
        Span<char> c = stackalloc char[4];
        for (int i = 0; i < 4; i++) c[i] = b[i] is >= 0x20 and < 0x7F ? (char)b[i] : '?';
        return new string(c);
    }

    void ReadHeader(ReadOnlySpan<byte> d)
    {
        if (seenHeader) throw Error("second IHDR chunk");
        if (d.Length != 13) throw Error($"IHDR is {d.Length} bytes, expected 13");
        uint w = BinaryPrimitives.ReadUInt32BigEndian(d), h = BinaryPrimitives.ReadUInt32BigEndian(d[4..]);
        if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue) throw Error($"invalid image size {w}x{h}");
        if ((long)w * h > Png.MaxPixels) throw Error($"image size {w}x{h} exceeds the limit of {Png.MaxPixels} pixels");
        (width, height, bitDepth, colourType) = ((int)w, (int)h, d[8], d[9]);
        bool depthOk = colourType switch
        {
            0 => bitDepth is 1 or 2 or 4 or 8 or 16,
            3 => bitDepth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => bitDepth is 8 or 16,
            _ => throw Error($"invalid colour type {colourType}"),
        };
        if (!depthOk) throw Error($"bit depth {bitDepth} is invalid for colour type {colourType}");
        if (d[10] != 0) throw Error($"unknown compression method {d[10]}");
        if (d[11] != 0) throw Error($"unknown filter method {d[11]}");
        if (d[12] > 1) throw Error($"unknown interlace method {d[12]}");
        interlaced = d[12] == 1;
        seenHeader = true;
    }

    void ReadPalette(ReadOnlySpan<byte> d)
    {
        if (palette is not null) throw Error("second PLTE chunk");
        if (seenIdat) throw Error("PLTE after IDAT");
        if (colourType is 0 or 4) throw Error($"PLTE is not allowed in a colour type {colourType} image");
        if (d.Length == 0 || d.Length % 3 != 0 || d.Length > 768) throw Error($"PLTE length {d.Length} is not 3 x (1..256)");
        if (colourType != 3) return;   // a suggested palette for true-colour images: not needed
        palette = new byte[d.Length / 3 * 4];
        for (int i = 0; i < d.Length / 3; i++)
        {
            palette[4 * i] = d[3 * i];
            palette[4 * i + 1] = d[3 * i + 1];
            palette[4 * i + 2] = d[3 * i + 2];
            palette[4 * i + 3] = 255;
        }
        if (palette.Length / 4 > 1 << bitDepth) throw Error($"PLTE has {palette.Length / 4} entries, more than {1 << bitDepth} for bit depth {bitDepth}");
    }

    void ReadTransparency(ReadOnlySpan<byte> d)
    {
        if (seenIdat) throw Error("tRNS after IDAT");
        if (transparentKey is not null) throw Error("second tRNS chunk");
        switch (colourType)
        {
            case 3:
                if (palette is null) throw Error("tRNS before PLTE");
                if (d.Length > palette.Length / 4) throw Error($"tRNS has {d.Length} entries for a {palette.Length / 4}-entry palette");
                for (int i = 0; i < d.Length; i++) palette[4 * i + 3] = d[i];
                transparentKey = [];
                break;
            case 0:
                if (d.Length != 2) throw Error($"tRNS for a gray image is {d.Length} bytes, expected 2");
                transparentKey = [BinaryPrimitives.ReadUInt16BigEndian(d)];
                break;
            case 2:
                if (d.Length != 6) throw Error($"tRNS for an RGB image is {d.Length} bytes, expected 6");
                transparentKey = [BinaryPrimitives.ReadUInt16BigEndian(d), BinaryPrimitives.ReadUInt16BigEndian(d[2..]), BinaryPrimitives.ReadUInt16BigEndian(d[4..])];
                break;
            default:
                throw Error($"tRNS is not allowed in a colour type {colourType} image (it has an alpha channel)");
        }
    }

    static readonly (int X0, int Y0, int Dx, int Dy)[] adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    static readonly (int X0, int Y0, int Dx, int Dy)[] progressive = [(0, 0, 1, 1)];

    long RowBytes(int pixels) => ((long)pixels * BitsPerPixel + 7) / 8;

    static (int W, int H) PassSize(int width, int height, (int X0, int Y0, int Dx, int Dy) p) =>
        (width > p.X0 ? (width - p.X0 + p.Dx - 1) / p.Dx : 0, height > p.Y0 ? (height - p.Y0 + p.Dy - 1) / p.Dy : 0);

    RgbaImage DecodeImage(ReadOnlySpan<byte> file)
    {
        var passes = interlaced ? adam7 : progressive;
        long rawSize = 0;
        foreach (var p in passes)
        {
            var (pw, ph) = PassSize(width, height, p);
            if (pw > 0 && ph > 0) rawSize += ph * (1 + RowBytes(pw));
        }
        long compressed = idat.Sum(c => (long)c.Length);
        if (rawSize > compressed * MaxDeflateRatio + 64)
            throw Error($"image data ({compressed} compressed bytes) is far too short for {width}x{height} pixels");
        if (rawSize > Array.MaxLength) throw Error($"image {width}x{height} needs {rawSize} bytes of pixel data, too large");

        byte[] raw = Inflate(file, (int)rawSize);
        var image = new RgbaImage(width, height);
        int offset = 0;
        foreach (var p in passes)
        {
            var (pw, ph) = PassSize(width, height, p);
            if (pw == 0 || ph == 0) continue;
            int rowBytes = (int)RowBytes(pw);
            Unfilter(raw.AsSpan(offset, ph * (rowBytes + 1)), rowBytes, ph);
            for (int y = 0; y < ph; y++)
                ConvertRow(raw.AsSpan(offset + y * (rowBytes + 1) + 1, rowBytes), pw,
                           image.Pixels.AsSpan(((p.Y0 + y * p.Dy) * width) * 4), p.X0, p.Dx);
            offset += ph * (rowBytes + 1);
        }
        return image;
    }

    byte[] Inflate(ReadOnlySpan<byte> file, int rawSize)
    {
        var compressed = new byte[idat.Sum(c => c.Length)];
        int at = 0;
        foreach (var (o, l) in idat) { file.Slice(o, l).CopyTo(compressed.AsSpan(at)); at += l; }
        var raw = new byte[rawSize];
        int got;
        try
        {
            using var z = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
            got = z.ReadAtLeast(raw, rawSize, throwOnEndOfStream: false);
        }
        // zlib reports bad data as InvalidDataException, some states as ZLibException (an IOException): both mean corrupt.
        catch (Exception e) when (e is InvalidDataException or IOException) { throw Error($"corrupt compressed image data ({e.Message})", e); }
        if (got < rawSize) throw Error($"compressed image data ends early: {got} of {rawSize} bytes for {width}x{height}");
        return raw;
    }

    void Unfilter(Span<byte> data, int rowBytes, int rows)
    {
        int bpp = Math.Max(1, BitsPerPixel / 8);
        Span<byte> previous = default;
        for (int y = 0; y < rows; y++)
        {
            var row = data.Slice(y * (rowBytes + 1), rowBytes + 1);
            byte filter = row[0];
            var cur = row[1..];
            switch (filter)
            {
                case 0: break;
                case 1:
                    for (int i = bpp; i < rowBytes; i++) cur[i] += cur[i - bpp];
                    break;
                case 2:
                    if (y > 0) for (int i = 0; i < rowBytes; i++) cur[i] += previous[i];
                    break;
                case 3:
                    for (int i = 0; i < rowBytes; i++)
                        cur[i] += (byte)(((i >= bpp ? cur[i - bpp] : 0) + (y > 0 ? previous[i] : 0)) >> 1);
                    break;
                case 4:
                    for (int i = 0; i < rowBytes; i++)
                        cur[i] += Paeth(i >= bpp ? cur[i - bpp] : (byte)0, y > 0 ? previous[i] : (byte)0,
                                        i >= bpp && y > 0 ? previous[i - bpp] : (byte)0);
                    break;
                default:
                    throw Error($"unknown filter type {filter} on row {y}");
            }
            previous = cur;
        }
    }

    /// <summary>The PNG Paeth predictor: whichever of left, up, up-left is closest to left + up − up-left.</summary>
    internal static byte Paeth(byte a, byte b, byte c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>Converts one unfiltered row of <paramref name="count"/> pixels to RGBA8 at x = x0, x0 + dx, ...</summary>
    void ConvertRow(ReadOnlySpan<byte> row, int count, Span<byte> outRow, int x0, int dx)
    {
        if (colourType == 6 && bitDepth == 8 && dx == 1) { row[..(count * 4)].CopyTo(outRow); return; }
        for (int i = 0; i < count; i++)
        {
            var px = outRow.Slice((x0 + i * dx) * 4, 4);
            switch (colourType)
            {
                case 0:
                {
                    int g = Sample(row, i, 0);
                    byte v = To8(g);
                    px[0] = px[1] = px[2] = v;
                    px[3] = transparentKey is [var key] && key == g ? (byte)0 : (byte)255;
                    break;
                }
                case 2:
                {
                    int r = Sample(row, i, 0), g = Sample(row, i, 1), b = Sample(row, i, 2);
                    (px[0], px[1], px[2]) = (To8(r), To8(g), To8(b));
                    px[3] = transparentKey is [var kr, var kg, var kb] && kr == r && kg == g && kb == b ? (byte)0 : (byte)255;
                    break;
                }
                case 3:
                {
                    int index = Sample(row, i, 0);
                    if (index * 4 >= palette!.Length)
                        throw Error($"palette index {index} out of range (palette has {palette.Length / 4} entries)");
                    palette.AsSpan(index * 4, 4).CopyTo(px);
                    break;
                }
                case 4:
                {
                    byte v = To8(Sample(row, i, 0));
                    px[0] = px[1] = px[2] = v;
                    px[3] = To8(Sample(row, i, 1));
                    break;
                }
                default:
                    for (int c = 0; c < 4; c++) px[c] = To8(Sample(row, i, c));
                    break;
            }
        }
    }

    /// <summary>Sample <paramref name="channel"/> of pixel <paramref name="i"/> at the file's bit depth.</summary>
    int Sample(ReadOnlySpan<byte> row, int i, int channel)
    {
        switch (bitDepth)
        {
            case 8: return row[i * Channels + channel];
            case 16:
                int at = (i * Channels + channel) * 2;
                return row[at] << 8 | row[at + 1];
            default:   // 1, 2, 4 bits: one channel, packed from the most significant bit
                int bit = i * bitDepth;
                return (row[bit >> 3] >> (8 - bitDepth - (bit & 7))) & ((1 << bitDepth) - 1);
        }
    }

    /// <summary>Scales a sample to 8 bits (16-bit values round to nearest; low depths replicate, e.g. 4-bit 0xA → 0xAA).</summary>
    byte To8(int v) => bitDepth switch
    {
        8 => (byte)v,
        16 => (byte)((v * 255 + 32767) / 65535),
        _ => colourType == 3 ? (byte)v : (byte)(v * 255 / ((1 << bitDepth) - 1)),
    };
}
