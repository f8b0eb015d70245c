using Mdm.Train.Data;

namespace Mdm.Train.Output;

/// <summary>Where the colours of a GIF come from.</summary>
public enum GifPalette
{
    /// <summary>One global colour table for every frame.</summary>
    Global,
    /// <summary>A local colour table per frame (better colours when frames differ a lot; larger file).</summary>
    PerFrame,
}

/// <summary>
/// Animated GIF89a writer: RGB(A) frames → one palette (the exact colours when there are at most 256, otherwise a
/// 6×7×6 colour cube, nearest colour), LZW-compressed image data (variable code width from min code size + 1 up to
/// 12 bits, a clear code when the table is full), a NETSCAPE2.0 loop extension and a per-frame delay. Alpha is ignored.
/// </summary>
public static class Gif
{
    const int MaxCodeBits = 12, MaxCodes = 1 << MaxCodeBits;

    /// <summary>Encodes frames of equal size; delay in 1/100 s per frame, loop count 0 = forever.</summary>
    public static byte[] Encode(IReadOnlyList<RgbaImage> frames, int delayCentiseconds = 10, int loopCount = 0, GifPalette palette = GifPalette.Global)
    {
        if (frames is null || frames.Count == 0) throw new ArgumentException("GIF: need at least one frame");
        if (delayCentiseconds is < 0 or > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(delayCentiseconds), delayCentiseconds, "GIF delay is 0..65535 hundredths of a second");
        if (loopCount is < 0 or > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(loopCount), loopCount, "GIF loop count is 0 (forever)..65535");
        int width = frames[0].Width, height = frames[0].Height;
        if (width > ushort.MaxValue || height > ushort.MaxValue) throw new ArgumentException($"GIF: {width}x{height} exceeds 65535 pixels per side");
        for (int i = 1; i < frames.Count; i++)
            if (frames[i].Width != width || frames[i].Height != height)
                throw new ArgumentException($"GIF: frame {i} is {frames[i].Width}x{frames[i].Height}, frame 0 is {width}x{height}");

        using var ms = new MemoryStream();
        ms.Write("GIF89a"u8);
        WriteU16(ms, width); WriteU16(ms, height);
        var global = palette == GifPalette.Global ? Palette.For(frames) : null;
        // global colour table flag, colour resolution 8 bits, table of 256 entries (2^(7+1))
        ms.WriteByte((byte)(global is null ? 0x70 : 0xF7));
        ms.WriteByte(0); ms.WriteByte(0);
        if (global is not null) ms.Write(global.Table);
        ms.Write([0x21, 0xFF, 11]); ms.Write("NETSCAPE2.0"u8); ms.Write([3, 1]); WriteU16(ms, loopCount); ms.WriteByte(0);
        foreach (var frame in frames)
        {
            var p = global ?? Palette.For([frame]);
            // graphic control extension: disposal 1 (leave in place), no transparency
            ms.Write([0x21, 0xF9, 4, 0x04]); WriteU16(ms, delayCentiseconds); ms.Write([0, 0]);
            ms.WriteByte(0x2C); WriteU16(ms, 0); WriteU16(ms, 0); WriteU16(ms, width); WriteU16(ms, height);
            ms.WriteByte((byte)(global is null ? 0x87 : 0x00));
            if (global is null) ms.Write(p.Table);
            const int minCodeSize = 8;
            ms.WriteByte(minCodeSize);
            WriteSubBlocks(ms, Lzw(p.Indices(frame), minCodeSize));
        }
        ms.WriteByte(0x3B);
        return ms.ToArray();
    }

    /// <summary>One GIF frame per video frame: clips [clips, frames, C, H, W] in [−1, 1], each frame laid out as an
    /// <see cref="ImageGrid"/> of all clips (so several samples play side by side).</summary>
    public static IReadOnlyList<RgbaImage> ClipFrames(ReadOnlySpan<float> clips, int clipCount, int frames, int channels, int height, int width,
        int columns = 0, int padding = 2, int scale = 1, byte padColour = 255)
    {
        if (clipCount <= 0) throw new ArgumentOutOfRangeException(nameof(clipCount), clipCount, "need at least one clip");
        if (frames <= 0) throw new ArgumentOutOfRangeException(nameof(frames), frames, "clips need at least one frame");
        long frameLength = (long)channels * height * width;
        if (clips.Length != clipCount * frames * frameLength)
            throw new ArgumentException($"clips hold {clips.Length} values, expected [{clipCount}, {frames}, {channels}, {height}, {width}]");
        var result = new List<RgbaImage>(frames);
        var gathered = new float[clipCount * frameLength];
        for (int f = 0; f < frames; f++)
        {
            for (int c = 0; c < clipCount; c++)
                clips.Slice((int)((c * frames + f) * frameLength), (int)frameLength).CopyTo(gathered.AsSpan((int)(c * frameLength)));
            result.Add(ImageGrid.Render(gathered, clipCount, channels, height, width, columns, padding, scale, padColour));
        }
        return result;
    }

    public static void Save(string path, IReadOnlyList<RgbaImage> frames, int delayCentiseconds = 10, int loopCount = 0, GifPalette palette = GifPalette.Global) =>
        File.WriteAllBytes(path, Encode(frames, delayCentiseconds, loopCount, palette));

    /// <summary>Clips [clips, frames, C, H, W] in [−1, 1] as an animated GIF (see <see cref="ClipFrames"/>).</summary>
    public static void SaveClips(string path, ReadOnlySpan<float> clips, int clipCount, int frames, int channels, int height, int width,
        int delayCentiseconds = 12, int scale = 2, int columns = 0) =>
        Save(path, ClipFrames(clips, clipCount, frames, channels, height, width, columns, scale: scale), delayCentiseconds);

    /// <summary>LZW codes of GIF image data, packed LSB-first.</summary>
    public static byte[] Lzw(ReadOnlySpan<byte> indices, int minCodeSize)
    {
        if (minCodeSize is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(minCodeSize), minCodeSize, "GIF min code size is 2..8");
        int clear = 1 << minCodeSize, end = clear + 1;
        var writer = new BitWriter();
        // (prefix code << 8 | next byte) → code
        var table = new Dictionary<int, int>();
        int codeSize = minCodeSize + 1, next = end + 1;
        writer.Write(clear, codeSize);
        if (indices.Length == 0) { writer.Write(end, codeSize); return writer.ToArray(); }
        int prefix = indices[0];
        if (prefix >= clear) throw new ArgumentException($"GIF: index {prefix} does not fit min code size {minCodeSize}");
        for (int i = 1; i < indices.Length; i++)
        {
            int k = indices[i];
            if (k >= clear) throw new ArgumentException($"GIF: index {k} does not fit min code size {minCodeSize}");
            int key = (prefix << 8) | k;
            if (table.TryGetValue(key, out int code)) { prefix = code; continue; }
            writer.Write(prefix, codeSize);
            if (next < MaxCodes)
            {
                table[key] = next++;
                // the decoder, one entry behind, widens its codes once its table reaches 2^codeSize
                if (next > 1 << codeSize && codeSize < MaxCodeBits) codeSize++;
            }
            else
            {
                writer.Write(clear, codeSize);
                table.Clear();
                codeSize = minCodeSize + 1; next = end + 1;
            }
            prefix = k;
        }
        writer.Write(prefix, codeSize);
        writer.Write(end, codeSize);
        return writer.ToArray();
    }

    static void WriteSubBlocks(Stream s, byte[] data)
    {
        for (int at = 0; at < data.Length; at += 255)
        {
            int n = Math.Min(255, data.Length - at);
            s.WriteByte((byte)n);
            s.Write(data, at, n);
        }
        s.WriteByte(0);
    }

    static void WriteU16(Stream s, int v) { s.WriteByte((byte)v); s.WriteByte((byte)(v >> 8)); }

    sealed class BitWriter
    {
        readonly List<byte> bytes = new();
        int buffer, bits;

        public void Write(int code, int width)
        {
            buffer |= code << bits;
            bits += width;
            while (bits >= 8) { bytes.Add((byte)buffer); buffer >>= 8; bits -= 8; }
        }

        public byte[] ToArray()
        {
            if (bits > 0) { bytes.Add((byte)buffer); buffer = 0; bits = 0; }
            return bytes.ToArray();
        }
    }

    /// <summary>A 256-entry colour table and the mapping of RGB to its indices.</summary>
    sealed class Palette
    {
        readonly Dictionary<int, byte>? exact;

        Palette(byte[] table, Dictionary<int, byte>? exact) { Table = table; this.exact = exact; }

        public byte[] Table { get; }

        /// <summary>The exact colours of the frames when there are at most 256, else the 6×7×6 cube.</summary>
        public static Palette For(IReadOnlyList<RgbaImage> frames)
        {
            var colours = new Dictionary<int, byte>();
            foreach (var f in frames)
            {
                var px = f.Pixels;
                for (int i = 0; i < px.Length; i += 4)
                {
                    int rgb = px[i] << 16 | px[i + 1] << 8 | px[i + 2];
                    if (colours.ContainsKey(rgb)) continue;
                    if (colours.Count == 256) return Cube();
                    colours[rgb] = (byte)colours.Count;
                }
            }
            var table = new byte[768];
            foreach (var (rgb, index) in colours)
                (table[3 * index], table[3 * index + 1], table[3 * index + 2]) = ((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb);
            return new Palette(table, colours);
        }

        static Palette Cube()
        {
            var table = new byte[768];
            for (int r = 0; r < 6; r++)
                for (int g = 0; g < 7; g++)
                    for (int b = 0; b < 6; b++)
                    {
                        int i = CubeIndex(r, g, b);
                        (table[3 * i], table[3 * i + 1], table[3 * i + 2]) = ((byte)(r * 51), (byte)Math.Round(g * 42.5), (byte)(b * 51));
                    }
            return new Palette(table, null);
        }

        static int CubeIndex(int r, int g, int b) => (r * 7 + g) * 6 + b;

        public byte[] Indices(RgbaImage frame)
        {
            var px = frame.Pixels;
            var result = new byte[px.Length / 4];
            for (int i = 0, j = 0; i < px.Length; i += 4, j++)
                result[j] = exact is not null
                    ? exact[px[i] << 16 | px[i + 1] << 8 | px[i + 2]]
                    : (byte)CubeIndex((int)Math.Round(px[i] / 51.0), (int)Math.Round(px[i + 1] / 42.5), (int)Math.Round(px[i + 2] / 51.0));
            return result;
        }
    }
}
