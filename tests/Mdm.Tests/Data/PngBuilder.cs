using System.Buffers.Binary;
using System.IO.Compression;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

/// <summary>
/// Builds PNG files of any colour type, bit depth and interlacing straight from chunks, independently of the codec's
/// encoder (which writes only 8-bit RGB/RGBA): packs samples, applies a random filter per row, deflates, adds CRCs.
/// <see cref="ExpectedRgba"/> is the reference conversion to RGBA8 the decoder must match.
/// </summary>
static class PngBuilder
{
    public static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    public static int Channels(int colourType) => colourType switch { 0 or 3 => 1, 2 => 3, 4 => 2, _ => 4 };

    public sealed record Spec(int Width, int Height, int ColourType, int BitDepth, int[] Samples, bool Interlaced = false,
                              byte[]? Palette = null, byte[]? Transparency = null);

    /// <summary>Random samples for every pixel and channel at the given depth (palette indices below paletteSize).</summary>
    public static Spec Random(Random rng, int width, int height, int colourType, int bitDepth, bool interlaced)
    {
        int channels = Channels(colourType);
        var samples = new int[width * height * channels];
        byte[]? palette = null, trns = null;
        if (colourType == 3)
        {
            int entries = rng.Next(1, (1 << bitDepth) + 1);
            palette = new byte[entries * 3];
            rng.NextBytes(palette);
            if (rng.Next(2) == 0) { trns = new byte[rng.Next(1, entries + 1)]; rng.NextBytes(trns); }
            for (int i = 0; i < samples.Length; i++) samples[i] = rng.Next(entries);
        }
        else
        {
            for (int i = 0; i < samples.Length; i++) samples[i] = rng.Next(1 << bitDepth);
            if (colourType is 0 or 2 && rng.Next(2) == 0)
            {
                // Key colour = the first pixel, so it certainly occurs.
                trns = new byte[2 * channels];
                for (int c = 0; c < channels; c++) BinaryPrimitives.WriteUInt16BigEndian(trns.AsSpan(2 * c), (ushort)samples[c]);
            }
        }
        return new Spec(width, height, colourType, bitDepth, samples, interlaced, palette, trns);
    }

    public static byte[] Build(Spec s, Random filterRng, IEnumerable<(string Type, byte[] Data)>? extraBeforeIdat = null)
    {
        var raw = new MemoryStream();
        var passes = s.Interlaced ? Adam7 : [(0, 0, 1, 1)];
        foreach (var p in passes)
        {
            var xs = Enumerable.Range(0, s.Width).Where(x => x >= p.X0 && (x - p.X0) % p.Dx == 0).ToArray();
            var ys = Enumerable.Range(0, s.Height).Where(y => y >= p.Y0 && (y - p.Y0) % p.Dy == 0).ToArray();
            if (xs.Length == 0 || ys.Length == 0) continue;
            byte[]? previous = null;
            foreach (int y in ys)
            {
                var row = PackRow(s, y, xs);
                byte filter = (byte)filterRng.Next(5);
                raw.WriteByte(filter);
                raw.Write(Filter(row, previous, filter, Math.Max(1, Channels(s.ColourType) * s.BitDepth / 8)));
                previous = row;
            }
        }
        var file = new MemoryStream();
        file.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, s.Width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), s.Height);
        (ihdr[8], ihdr[9], ihdr[12]) = ((byte)s.BitDepth, (byte)s.ColourType, (byte)(s.Interlaced ? 1 : 0));
        Png.WriteChunk(file, "IHDR", ihdr);
        if (s.Palette is not null) Png.WriteChunk(file, "PLTE", s.Palette);
        if (s.Transparency is not null) Png.WriteChunk(file, "tRNS", s.Transparency);
        foreach (var (type, data) in extraBeforeIdat ?? []) Png.WriteChunk(file, type, data);
        var compressed = Deflate(raw.ToArray());
        int half = compressed.Length / 2;   // two IDAT chunks: the decoder must join them
        Png.WriteChunk(file, "IDAT", compressed.AsSpan(0, half));
        Png.WriteChunk(file, "IDAT", compressed.AsSpan(half));
        Png.WriteChunk(file, "IEND", []);
        return file.ToArray();
    }

    public static byte[] Deflate(byte[] data)
    {
        var output = new MemoryStream();
        using (var z = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return output.ToArray();
    }

    static byte[] PackRow(Spec s, int y, int[] xs)
    {
        int channels = Channels(s.ColourType), depth = s.BitDepth;
        var row = new byte[(xs.Length * channels * depth + 7) / 8];
        int bit = 0;
        foreach (int x in xs)
            for (int c = 0; c < channels; c++)
            {
                int v = s.Samples[(y * s.Width + x) * channels + c];
                if (depth == 16) { row[bit / 8] = (byte)(v >> 8); row[bit / 8 + 1] = (byte)v; }
                else if (depth == 8) row[bit / 8] = (byte)v;
                else row[bit / 8] |= (byte)(v << (8 - depth - bit % 8));
                bit += depth;
            }
        return row;
    }

    static byte[] Filter(byte[] row, byte[]? up, byte filter, int bpp)
    {
        var result = new byte[row.Length];
        for (int i = 0; i < row.Length; i++)
        {
            int a = i >= bpp ? row[i - bpp] : 0, b = up?[i] ?? 0, c = i >= bpp && up is not null ? up[i - bpp] : 0;
            int predictor = filter switch
            {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                _ => PaethReference(a, b, c),
            };
            result[i] = (byte)(row[i] - predictor);
        }
        return result;
    }

    static int PaethReference(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }

    /// <summary>What the decoder must return: RGBA8, 16-bit rounded, low gray depths scaled to 0..255, tRNS applied.</summary>
    public static byte[] ExpectedRgba(Spec s)
    {
        int channels = Channels(s.ColourType), maxValue = (1 << s.BitDepth) - 1;
        byte To8(int v) => s.BitDepth == 16 ? (byte)Math.Round(v * 255.0 / 65535.0, MidpointRounding.AwayFromZero) : (byte)(v * 255 / maxValue);
        int[]? key = s.Transparency is null || s.ColourType == 3 ? null
            : [.. Enumerable.Range(0, channels).Select(c => (int)BinaryPrimitives.ReadUInt16BigEndian(s.Transparency.AsSpan(2 * c)))];
        var rgba = new byte[s.Width * s.Height * 4];
        for (int p = 0; p < s.Width * s.Height; p++)
        {
            var v = s.Samples.AsSpan(p * channels, channels);
            var o = rgba.AsSpan(p * 4, 4);
            switch (s.ColourType)
            {
                case 0: o[0] = o[1] = o[2] = To8(v[0]); o[3] = key is not null && key[0] == v[0] ? (byte)0 : (byte)255; break;
                case 2:
                    (o[0], o[1], o[2]) = (To8(v[0]), To8(v[1]), To8(v[2]));
                    o[3] = key is not null && key.AsSpan().SequenceEqual(v) ? (byte)0 : (byte)255;
                    break;
                case 3:
                    (o[0], o[1], o[2]) = (s.Palette![v[0] * 3], s.Palette[v[0] * 3 + 1], s.Palette[v[0] * 3 + 2]);
                    o[3] = s.Transparency is not null && v[0] < s.Transparency.Length ? s.Transparency[v[0]] : (byte)255;
                    break;
                case 4: o[0] = o[1] = o[2] = To8(v[0]); o[3] = To8(v[1]); break;
                default: for (int c = 0; c < 4; c++) o[c] = To8(v[c]); break;
            }
        }
        return rgba;
    }

    /// <summary>Splits a PNG into its chunks (type, data) after the signature; assumes a well-formed file.</summary>
    public static List<(string Type, byte[] Data)> Chunks(byte[] file)
    {
        var chunks = new List<(string, byte[])>();
        for (int pos = 8; pos + 12 <= file.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(pos));
            chunks.Add((System.Text.Encoding.ASCII.GetString(file, pos + 4, 4), file.AsSpan(pos + 8, length).ToArray()));
            pos += 12 + length;
        }
        return chunks;
    }

    public static byte[] Assemble(IEnumerable<(string Type, byte[] Data)> chunks)
    {
        var file = new MemoryStream();
        file.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        foreach (var (type, data) in chunks) Png.WriteChunk(file, type, data);
        return file.ToArray();
    }
}
