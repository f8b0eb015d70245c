using System.Text.Json;

namespace Mdm.Train.Data;

/// <summary>
/// The Twemoji set from npm <c>emoji-datasource-twitter@16.0.0</c>, fetched by <c>scripts/get-emoji.sh</c> into
/// <c>data/emoji/</c>. Images come from the 64 px sheet <c>img/twitter/sheets-clean/64.png</c> (a grid of
/// 66 px cells with a 1 px transparent border, positions from <c>emoji.json</c> sheet_x/sheet_y) or, when the sheet
/// is absent, from the per-emoji files <c>img/twitter/64/&lt;image&gt;</c>. They are composited on white and resized.
/// Labels are the emoji categories (ordinal order), e.g. "Animals &amp; Nature".
/// Twemoji graphics by Twitter/jdecked, CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/): credit them wherever
/// samples of this set or of models trained on it are shown. The package's code and metadata are MIT.
/// </summary>
public sealed class EmojiDataset : PreparedImageDataset
{
    public const string DefaultFolder = "data/emoji";
    public const string FetchCommand = "scripts/get-emoji.sh";
    public const string Credit = "Twemoji graphics by Twitter/jdecked, CC-BY 4.0";
    const int SheetEmojiSize = 64, SheetCell = SheetEmojiSize + 2;
    const string SheetPath = "img/twitter/sheets-clean/64.png", SingleFolder = "img/twitter/64";

    /// <summary>One emoji image: its code points (e.g. "1F600"), short name, category and sheet cell.</summary>
    public sealed record Entry(string Unified, string ShortName, string Category, int SheetX, int SheetY, string ImageFile);

    readonly Entry[] entries;
    readonly int[] labels;
    readonly string folder;
    readonly Lazy<RgbaImage>? sheet;

    public IReadOnlyList<Entry> Entries => entries;

    EmojiDataset(string folder, Entry[] entries, string[] classes, int imageSize, int channels, bool useSheet)
        : base(entries.Length, imageSize, channels, classes)
    {
        (this.folder, this.entries) = (folder, entries);
        labels = [.. entries.Select(e => Array.IndexOf(classes, e.Category))];
        if (useSheet) sheet = new Lazy<RgbaImage>(() => Png.Load(Path.Combine(folder, SheetPath)), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>
    /// Opens the set in <paramref name="folder"/> (default <c>data/emoji</c> relative to the working directory).
    /// With <paramref name="includeSkinVariations"/> the 1875 skin-tone variants join the 1911 base emoji.
    /// </summary>
    public static EmojiDataset Open(string? folder = null, int imageSize = 64, bool includeSkinVariations = false, int channels = 3)
    {
        folder ??= DefaultFolder;
        string json = Path.Combine(folder, "emoji.json");
        bool hasSheet = File.Exists(Path.Combine(folder, SheetPath));
        if (!File.Exists(json) || (!hasSheet && !Directory.Exists(Path.Combine(folder, SingleFolder))))
            throw new FileNotFoundException(
                $"emoji data not found in '{Path.GetFullPath(folder)}' (needs emoji.json and {SheetPath}). " +
                $"Fetch it from the repository root with: {FetchCommand}  (runs `npm pack emoji-datasource-twitter@16.0.0` into data/)");
        var entries = ReadIndex(json, includeSkinVariations);
        if (entries.Length == 0) throw new DataFormatException(json, "lists no emoji with a Twitter image");
        string[] classes = [.. entries.Select(e => e.Category).Distinct().Order(StringComparer.Ordinal)];
        return new EmojiDataset(folder, entries, classes, imageSize, channels, hasSheet);
    }

    static Entry[] ReadIndex(string json, bool includeSkinVariations)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new DataFormatException(json, "top level is not a JSON array");
            var list = new List<Entry>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                string name = e.TryGetProperty("short_name", out var n) ? n.GetString() ?? "" : "?";
                string category = (e.TryGetProperty("category", out var c) ? c.GetString() : null)
                                  ?? throw new DataFormatException(json, $"emoji '{name}' has no category");
                Add(list, e, name, category, json);
                if (includeSkinVariations && e.TryGetProperty("skin_variations", out var variations) && variations.ValueKind == JsonValueKind.Object)
                    foreach (var v in variations.EnumerateObject()) Add(list, v.Value, $"{name}:{v.Name}", category, json);
            }
            return [.. list];
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new DataFormatException(json, $"unexpected emoji.json content ({e.Message})", e);
        }
    }

    static void Add(List<Entry> list, JsonElement e, string name, string category, string json)
    {
        if (e.TryGetProperty("has_img_twitter", out var has) && has.ValueKind == JsonValueKind.False) return;
        JsonElement Field(string key) => e.TryGetProperty(key, out var v) ? v : throw new DataFormatException(json, $"emoji '{name}' has no '{key}'");
        int x = Field("sheet_x").GetInt32(), y = Field("sheet_y").GetInt32();
        if (x < 0 || y < 0) throw new DataFormatException(json, $"emoji '{name}' has sheet position ({x}, {y})");
        list.Add(new Entry(Field("unified").GetString() ?? "", name, category, x, y, Field("image").GetString() ?? ""));
    }

    public override int LabelOf(int index)
    {
        DatasetChecks.Index(this, index);
        return labels[index];
    }

    protected override byte[] Prepare(int index)
    {
        var e = entries[index];
        if (sheet is null) return FromRgba(Png.Load(Path.Combine(folder, SingleFolder, e.ImageFile)));
        var image = sheet.Value;
        int x = e.SheetX * SheetCell + 1, y = e.SheetY * SheetCell + 1;
        if (x + SheetEmojiSize > image.Width || y + SheetEmojiSize > image.Height)
            throw new DataFormatException(Path.Combine(folder, SheetPath),
                $"emoji '{e.ShortName}' cell ({e.SheetX}, {e.SheetY}) lies outside the {image.Width}x{image.Height} sheet");
        return FromRgba(image.Crop(x, y, SheetEmojiSize, SheetEmojiSize));
    }
}
