using System.Reflection;
using System.Text.Json;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu.Tuning;

/// <summary>A table or one of its entries that cannot be read; the message names the file and the entry.</summary>
public sealed class TuningTableException(string message) : Exception(message);

/// <summary>Which kernel variant to run, per GPU architecture ("sm_90") and shape class, as measured by
/// `Mdm.Bench tune`. Lookups that find no entry fall back to <see cref="TuningHeuristics"/>.</summary>
public sealed class TuningTable
{
    public const string GemmOp = "gemm", AttentionForwardOp = "attention_forward", AttentionBackwardOp = "attention_backward", ConvOp = "conv", GroupNormOp = "groupnorm";

    /// <summary>The variants each op may name; the first of the attention pair and of conv is the reference.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Variants = new Dictionary<string, string[]>
    {
        [GemmOp] = [GemmVariant.Narrow, GemmVariant.Wide, GemmVariant.SplitK, GemmVariant.Wgmma, GemmVariant.BK32, GemmVariant.M64BK32],
        [AttentionForwardOp] = [AttentionVariant.Simt, AttentionVariant.TensorCore],
        [AttentionBackwardOp] = [AttentionVariant.Simt, AttentionVariant.TensorCore],
        [ConvOp] = [ConvVariant.Im2Col, ConvVariant.ImplicitNarrow, ConvVariant.ImplicitWide],
        [GroupNormOp] = [GroupNormVariant.TwoPass, GroupNormVariant.OnePass, GroupNormVariant.WarpRows],
    };

    readonly Dictionary<(string Gpu, string Op, string Shape), string> entries;

    public string Source { get; }
    public IReadOnlyDictionary<(string Gpu, string Op, string Shape), string> Entries => entries;

    TuningTable(string source, Dictionary<(string, string, string), string> entries) { Source = source; this.entries = entries; }

    public static TuningTable Empty(string source) => new(source, new());

    /// <summary>The table committed with the kernels (Gpu/Tuning/tuning.json, an embedded resource).</summary>
    public static TuningTable Committed { get; } = LoadCommitted();

    static TuningTable LoadCommitted()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Mdm.Kernels.Gpu.Tuning.tuning.json")
            ?? throw new TuningTableException("tuning.json: embedded resource missing from Mdm.Kernels");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), "tuning.json");
    }

    public static TuningTable Load(string path)
    {
        if (!File.Exists(path)) throw new TuningTableException($"{path}: tuning table not found");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Reads {"version": 1, "gpus": {"sm_90": {"gemm": {"k256": "narrow"}, ...}}}; <paramref name="source"/>
    /// names the file in errors.</summary>
    public static TuningTable Parse(string json, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new TuningTableException($"{source}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new TuningTableException($"{source}: the table must be a JSON object");
            if (!root.TryGetProperty("version", out var version) || !version.TryGetInt32(out int v) || v != 1)
                throw new TuningTableException($"{source}: version: expected 1");
            if (!root.TryGetProperty("gpus", out var gpus) || gpus.ValueKind != JsonValueKind.Object)
                throw new TuningTableException($"{source}: gpus: expected an object keyed by architecture (\"sm_90\")");
            var entries = new Dictionary<(string, string, string), string>();
            foreach (var gpu in gpus.EnumerateObject())
            {
                string where = $"gpus.{gpu.Name}";
                if (!IsArchitecture(gpu.Name)) throw new TuningTableException($"{source}: {where}: architecture must look like sm_90");
                if (gpu.Value.ValueKind != JsonValueKind.Object) throw new TuningTableException($"{source}: {where}: expected an object");
                foreach (var op in gpu.Value.EnumerateObject())
                {
                    if (op.Name is "source" or "comment") continue;
                    if (!Variants.TryGetValue(op.Name, out var allowed))
                        throw new TuningTableException($"{source}: {where}.{op.Name}: unknown op (expected {string.Join(", ", Variants.Keys)}, source)");
                    if (op.Value.ValueKind != JsonValueKind.Object) throw new TuningTableException($"{source}: {where}.{op.Name}: expected an object of shape class → variant");
                    foreach (var shape in op.Value.EnumerateObject())
                    {
                        string entry = $"{where}.{op.Name}.{shape.Name}";
                        if (!ShapeClass.IsValid(op.Name, shape.Name))
                            throw new TuningTableException($"{source}: {entry}: not a shape class of {op.Name} (expected {ShapeClass.Pattern(op.Name)})");
                        string? variant = shape.Value.ValueKind == JsonValueKind.String ? shape.Value.GetString() : null;
                        if (variant is null || !allowed.Contains(variant))
                            throw new TuningTableException($"{source}: {entry}: unknown variant {shape.Value.GetRawText()} (expected {string.Join(" or ", allowed)})");
                        entries[(gpu.Name, op.Name, shape.Name)] = variant;
                    }
                }
            }
            return new TuningTable(source, entries);
        }
    }

    static bool IsArchitecture(string name) => name.StartsWith("sm_", StringComparison.Ordinal) && name.Length > 3 && name[3..].All(char.IsAsciiDigit);

    /// <summary>An override of <paramref name="op"/>'s variant as a setting takes it: a known variant or null, else one
    /// line naming the setting and the variants.</summary>
    public static string? CheckVariant(string setting, string op, string? value) =>
        value is null || Variants[op].Contains(value) ? value
            : throw new ArgumentException($"{setting}: unknown variant '{value}' (expected {string.Join(", ", Variants[op])} or null)");

    /// <summary>The measured variant, or null when the table has no entry for this GPU and shape class.</summary>
    public string? Find(string? gpu, string op, string shapeClass) =>
        gpu is not null && entries.TryGetValue((gpu, op, shapeClass), out var v) ? v : null;

    /// <summary>How a bf16 GEMM with this K and this many 128×128 output tiles (all batches) runs (a
    /// <see cref="GemmVariant"/>): the table's entry for its class ("k4096-few"), else for its K ("k4096"), else
    /// <see cref="TuningHeuristics.Gemm(int, long)"/>.</summary>
    public string Gemm(string? gpu, int k, long tiles) =>
        Find(gpu, GemmOp, ShapeClass.Gemm(k, tiles)) ?? Find(gpu, GemmOp, ShapeClass.Gemm(k)) ?? TuningHeuristics.Gemm(k, tiles);

    /// <summary>The table's entry for this K ("k4096"), else <see cref="TuningHeuristics.Gemm"/>.</summary>
    public string Gemm(string? gpu, int k) => Find(gpu, GemmOp, ShapeClass.Gemm(k)) ?? TuningHeuristics.Gemm(k);

    /// <summary>Whether a bf16 GEMM with this K uses the 4-warp 64×64 layout (<see cref="Gemm"/> picks "wide").</summary>
    public bool GemmWideWarps(string? gpu, int k) => Gemm(gpu, k) == GemmVariant.Wide;

    /// <summary>Whether attention (forward or backward) runs on tensor cores: the table, else SIMT.</summary>
    public bool AttentionOnTensorCores(string? gpu, bool backward, int n, int headDim) =>
        Find(gpu, backward ? AttentionBackwardOp : AttentionForwardOp, ShapeClass.Attention(n, headDim)) is { } v
            ? v == AttentionVariant.TensorCore : TuningHeuristics.AttentionOnTensorCores;

    /// <summary>How a bf16 convolution pass with this kernel size and GEMM reduction length K runs: the table, else
    /// <see cref="TuningHeuristics.Conv"/>.</summary>
    public string Conv(string? gpu, ConvPass pass, int kernel, int k) =>
        Find(gpu, ConvOp, ShapeClass.Conv(pass, kernel, k)) ?? TuningHeuristics.Conv;

    /// <summary>How the GroupNorm forward computes its statistics for rows of <paramref name="rowElements"/> = C/G·H·W
    /// elements: the table, else <see cref="TuningHeuristics.GroupNorm"/>.</summary>
    public string GroupNorm(string? gpu, int rowElements) =>
        Find(gpu, GroupNormOp, ShapeClass.GroupNorm(rowElements)) ?? TuningHeuristics.GroupNorm;

    /// <summary>The table as JSON in the format <see cref="Parse"/> reads (keys sorted, so diffs stay small).</summary>
    public string ToJson(IReadOnlyDictionary<string, string>? gpuSources = null)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WriteStartObject("gpus");
            foreach (var gpu in entries.Keys.Select(e => e.Gpu).Distinct().Order(StringComparer.Ordinal))
            {
                w.WriteStartObject(gpu);
                if (gpuSources is not null && gpuSources.TryGetValue(gpu, out var src)) w.WriteString("source", src);
                foreach (var op in Variants.Keys)
                {
                    var shapes = entries.Where(e => e.Key.Gpu == gpu && e.Key.Op == op).OrderBy(e => e.Key.Shape, StringComparer.Ordinal).ToList();
                    if (shapes.Count == 0) continue;
                    w.WriteStartObject(op);
                    foreach (var e in shapes) w.WriteString(e.Key.Shape, e.Value);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>A table with these entries (the tune mode builds one from its measurements).</summary>
    public static TuningTable From(string source, IEnumerable<((string Gpu, string Op, string Shape) Key, string Variant)> rows) =>
        Parse(Empty(source).With(rows).ToJson(), source);

    TuningTable With(IEnumerable<((string, string, string) Key, string Variant)> rows)
    {
        var copy = new Dictionary<(string, string, string), string>(entries);
        foreach (var (key, variant) in rows) copy[key] = variant;
        return new TuningTable(Source, copy);
    }
}

public static class GemmVariant
{
    /// <summary>8 warps of 64×32 per 128×128 tile.</summary>
    public const string Narrow = "narrow";
    /// <summary>4 warps of 64×64 per 128×128 tile.</summary>
    public const string Wide = "wide";
    /// <summary>8 warps of 64×32, and K split over <see cref="TuningHeuristics.GemmSplits"/> groups per tile when the
    /// tiles alone leave multiprocessors idle (f32 C without bias; otherwise as narrow). For the weight gradients:
    /// M·N = channels², K = tokens.</summary>
    public const string SplitK = "split-k";
    /// <summary>One warpgroup (wgmma m64n64k16, sm_90a) per 64×64 tile (f32 C; where it is not loaded, as narrow/wide by K).</summary>
    public const string Wgmma = "wgmma";
    /// <summary>8 warps of 64×32 per 128×128 tile, 32-deep K slices through 4 stages (64 KB): a shorter pipeline fill.</summary>
    public const string BK32 = "bk32";
    /// <summary>4 warps of 64×32 per 64×128 tile, 32-deep K slices through 4 stages (48 KB): twice the groups, four per
    /// multiprocessor, for short K over many tiles.</summary>
    public const string M64BK32 = "m64-bk32";
}

public static class AttentionVariant
{
    public const string Simt = "simt", TensorCore = "tensor-core";
}

/// <summary>How the GroupNorm forward computes its statistics (the tuning table's "groupnorm" entries).</summary>
public static class GroupNormVariant
{
    /// <summary>Mean, then centred variance, then normalise: three sweeps (the reference).</summary>
    public const string TwoPass = "two-pass";
    /// <summary>Shifted one-pass sums, then normalise: two sweeps, one group per row.</summary>
    public const string OnePass = "one-pass";
    /// <summary>One-pass sums with one warp per row, several rows per group, no barriers.</summary>
    public const string WarpRows = "warp-rows";
}

public static class ConvVariant
{
    /// <summary>bf16 im2col (col2im for the input gradient) + the tensor-core GEMM: the reference.</summary>
    public const string Im2Col = "im2col";
    /// <summary>Implicit GEMM, 8 warps of 64×32 per 128×128 tile.</summary>
    public const string ImplicitNarrow = "implicit-narrow";
    /// <summary>Implicit GEMM, 4 warps of 64×64 per 128×128 tile.</summary>
    public const string ImplicitWide = "implicit-wide";
}

/// <summary>What the backend picks when the table has no entry for the GPU or the shape class.</summary>
public static class TuningHeuristics
{
    /// <summary>Short K favours 8 warps (they hide the pipeline's fill and drain); long K favours 4 warps of 64×64.</summary>
    public const int WideWarpMinK = 2048;

    public static bool GemmWideWarps(int k) => k >= WideWarpMinK;

    /// <summary>Wide from <see cref="WideWarpMinK"/>, else narrow; split-K only where a GPU run measured it.</summary>
    public static string Gemm(int k) => GemmWideWarps(k) ? GemmVariant.Wide : GemmVariant.Narrow;

    /// <summary>Up to this K a GEMM over more than <see cref="ShapeClass.FewTiles"/> tiles takes the 64×128 tile.</summary>
    public const int SmallKMaxK = 512;

    /// <summary>By K and 128×128 output tiles: a K of at most <see cref="SmallKMaxK"/> over many tiles (the UNet's
    /// projections, FFN and 1×1 convolutions: K = channels, N = tokens) spends a large share of a 128×128 group in the
    /// pipeline fill and the epilogue with only two groups per multiprocessor, so it takes
    /// <see cref="GemmVariant.M64BK32"/>; otherwise <see cref="Gemm(int)"/>.</summary>
    public static string Gemm(int k, long tiles) =>
        k <= SmallKMaxK && tiles > ShapeClass.FewTiles ? GemmVariant.M64BK32 : Gemm(k);

    /// <summary>Split-K: each split at least this many 64-deep K slices, so the pipeline still fills.</summary>
    public const int MinSlicesPerSplit = 4;
    public const int MaxSplits = 32;

    /// <summary>How many pieces the split-K variant cuts K into: enough groups for two per multiprocessor when the
    /// output tiles alone are fewer than the multiprocessors, each piece at least <see cref="MinSlicesPerSplit"/>
    /// slices; 1 = no split.</summary>
    public static int GemmSplits(long tiles, int slices, int multiprocessors)
    {
        if (tiles <= 0 || tiles >= multiprocessors) return 1;
        long want = (2L * multiprocessors + tiles - 1) / tiles;
        return (int)Math.Max(1, Math.Min(Math.Min(want, slices / MinSlicesPerSplit), MaxSplits));
    }

    /// <summary>SIMT until a GPU run has measured the tensor-core kernels for the shape.</summary>
    public const bool AttentionOnTensorCores = false;

    /// <summary>im2col until a GPU run has measured the implicit-GEMM convolution for the GPU and shape.</summary>
    public const string Conv = ConvVariant.Im2Col;

    /// <summary>The two-pass kernel until a GPU run has measured the one-pass variants.</summary>
    public const string GroupNorm = GroupNormVariant.TwoPass;
}

/// <summary>Shape classes: sizes rounded up to a power of two, so one measurement covers the shapes near it.</summary>
public static class ShapeClass
{
    /// <summary>A bf16 GEMM by its reduction length: "k256" covers 129 ≤ K ≤ 256.</summary>
    public static string Gemm(int k) => $"k{RoundUp(k)}";

    /// <summary>Output tiles (128×128, all batches) up to which a GEMM's class gets "-few": too few groups to fill a
    /// GPU without splitting K (the weight gradients: M·N = channels², K = tokens).</summary>
    public const int FewTiles = 64;

    /// <summary>128×128 output tiles of an M×N GEMM over all its output batches (what <see cref="Gemm(int, long)"/> counts).</summary>
    public static long GemmTiles(int m, int n, int outBatch = 1) =>
        (long)((m + Kernels.MatmulTensorCoreKernels.TileM - 1) / Kernels.MatmulTensorCoreKernels.TileM)
        * ((n + Kernels.MatmulTensorCoreKernels.TileN - 1) / Kernels.MatmulTensorCoreKernels.TileN) * outBatch;

    /// <summary>"k4096-few" for a GEMM of at most <see cref="FewTiles"/> output tiles, else "k4096".</summary>
    public static string Gemm(int k, long tiles) => tiles <= FewTiles ? Gemm(k) + FewSuffix : Gemm(k);

    const string FewSuffix = "-few";

    /// <summary>Attention by head dimension and sequence length (keys): "d64-n1024" covers 513 ≤ N ≤ 1024.</summary>
    public static string Attention(int n, int headDim) => $"d{headDim}-n{RoundUp(n)}";

    /// <summary>A convolution pass by kernel size and GEMM reduction length: "forward-3x3-k4096" covers a 3×3 forward
    /// with 2049 ≤ Cin·9 ≤ 4096 (dgrad: Cout·9; wgrad: batch·Ho·Wo).</summary>
    public static string Conv(ConvPass pass, int kernel, int k) => $"{pass.ToString().ToLowerInvariant()}-{kernel}x{kernel}-k{RoundUp(k)}";

    /// <summary>A GroupNorm forward by the elements of one (n, g) row: "m4096" covers 2049 ≤ C/G·H·W ≤ 4096.</summary>
    public static string GroupNorm(int rowElements) => $"m{RoundUp(rowElements)}";

    public static string Pattern(string op) => op switch
    {
        TuningTable.GemmOp => "k<power of two>[-few]",
        TuningTable.GroupNormOp => "m<power of two>",
        TuningTable.ConvOp => "<forward|dgrad|wgrad>-<n>x<n>-k<power of two>",
        _ => "d<head dim>-n<power of two>",
    };

    public static bool IsValid(string op, string shape)
    {
        if (op == TuningTable.GemmOp)
        {
            if (shape.EndsWith(FewSuffix, StringComparison.Ordinal)) shape = shape[..^FewSuffix.Length];
            return shape.Length > 1 && shape[0] == 'k' && int.TryParse(shape.AsSpan(1), out int k) && k > 0 && RoundUp(k) == k && shape == Gemm(k);
        }
        if (op == TuningTable.GroupNormOp)
            return shape.Length > 1 && shape[0] == 'm' && int.TryParse(shape.AsSpan(1), out int m) && m > 0 && RoundUp(m) == m && shape == GroupNorm(m);
        if (op == TuningTable.ConvOp)
        {
            var parts = shape.Split('-');
            if (parts.Length != 3 || !Enum.TryParse<ConvPass>(parts[0], true, out var pass) || parts[0] != parts[0].ToLowerInvariant()) return false;
            var window = parts[1].Split('x');
            return window.Length == 2 && int.TryParse(window[0], out int kernel) && kernel > 0 && window[1] == window[0]
                && parts[2].Length > 1 && parts[2][0] == 'k' && int.TryParse(parts[2].AsSpan(1), out int kc) && kc > 0 && RoundUp(kc) == kc
                && shape == Conv(pass, kernel, kc);
        }
        int dash = shape.IndexOf("-n", StringComparison.Ordinal);
        return shape.Length > 1 && shape[0] == 'd' && dash > 1
            && int.TryParse(shape.AsSpan(1, dash - 1), out int d) && d > 0
            && int.TryParse(shape.AsSpan(dash + 2), out int n) && n > 0 && RoundUp(n) == n && shape == Attention(n, d);
    }

    static int RoundUp(int x) => x <= 1 ? 1 : (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)x), int.MaxValue);
}
