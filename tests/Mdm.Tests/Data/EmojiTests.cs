using System.Diagnostics;
using System.Text.Json;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

public class EmojiTests
{
    /// <summary>data/emoji of this checkout (found by walking up to Mdm.sln), where scripts/get-emoji.sh puts it.</summary>
    internal static string RepositoryDataFolder()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Mdm.sln"))) return Path.Combine(dir.FullName, EmojiDataset.DefaultFolder);
        return Path.GetFullPath(EmojiDataset.DefaultFolder);
    }

    static float Signed(int b) => b / 127.5f - 1f;

    [Test]
    public void MissingDataNamesTheFetchCommand()
    {
        using var empty = new TempFolder();
        Assert.That(() => EmojiDataset.Open(empty.Path),
                    Throws.TypeOf<FileNotFoundException>().With.Message.Contains("scripts/get-emoji.sh")
                          .And.Message.Contains("npm pack emoji-datasource-twitter@16.0.0").And.Message.Contains(empty.Path));
    }

    /// <summary>A miniature emoji.json + 3 x 2 sheet whose cell borders are opaque magenta, so an off-by-one crop shows.</summary>
    static void WriteMiniature(TempFolder folder, bool sheet)
    {
        object Emoji(string unified, string category, int x, int y, object? skins = null, bool hasImage = true) => new Dictionary<string, object?>
        {
            ["unified"] = unified, ["short_name"] = unified.ToLowerInvariant(), ["category"] = category, ["image"] = unified.ToLowerInvariant() + ".png",
            ["sheet_x"] = x, ["sheet_y"] = y, ["has_img_twitter"] = hasImage, ["skin_variations"] = skins,
        };
        var skins = new Dictionary<string, object> { ["1F3FB"] = new { unified = "AA-1F3FB", image = "aa-1f3fb.png", sheet_x = 2, sheet_y = 0, has_img_twitter = true } };
        object[] entries = [Emoji("AA", "Symbols", 0, 0, skins), Emoji("BB", "Animals & Nature", 1, 0), Emoji("CC", "Symbols", 0, 1),
                            Emoji("DD", "Flags", 1, 1, hasImage: false)];
        File.WriteAllText(folder.File("emoji.json"), JsonSerializer.Serialize(entries));
        var image = new RgbaImage(3 * 66, 2 * 66);
        for (int i = 0; i < image.Pixels.Length; i += 4) (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2], image.Pixels[i + 3]) = (255, 0, 255, 255);
        for (int cy = 0; cy < 2; cy++)
            for (int cx = 0; cx < 3; cx++)
            {
                var cell = new RgbaImage(64, 64);
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 64; x++)
                    {
                        var p = cell.Pixel(x, y);
                        (p[0], p[1], p[2], p[3]) = ((byte)(40 * cx + 10), (byte)(100 * cy + 20), 30, (byte)(x < 32 ? 255 : 0));   // right half transparent
                        p.CopyTo(image.Pixel(cx * 66 + 1 + x, cy * 66 + 1 + y));
                    }
                if (!sheet) Png.Save(folder.File("img", "twitter", "64", cy == 0 ? (cx == 0 ? "aa.png" : cx == 1 ? "bb.png" : "aa-1f3fb.png") : cx == 0 ? "cc.png" : "dd.png"), cell);
            }
        if (sheet) Png.Save(folder.File("img", "twitter", "sheets-clean", "64.png"), image);
    }

    [TestCase(true), TestCase(false)]
    public void ReadsCellsCategoriesAndSkinVariations(bool sheet)
    {
        using var folder = new TempFolder();
        WriteMiniature(folder, sheet);
        var set = EmojiDataset.Open(folder.Path, imageSize: 64, includeSkinVariations: true);
        Assert.That(set.ClassNames, Is.EqualTo(new[] { "Animals & Nature", "Symbols" }), "ordinal category order; DD has no Twitter image");
        Assert.That(set.Entries.Select(e => e.Unified), Is.EqualTo(new[] { "AA", "AA-1F3FB", "BB", "CC" }));
        Assert.That(Enumerable.Range(0, set.Count).Select(set.LabelOf), Is.EqualTo(new[] { 1, 1, 0, 1 }));
        Assert.That(EmojiDataset.Open(folder.Path).Count, Is.EqualTo(3), "without skin variations");
        (int cx, int cy)[] cells = [(0, 0), (2, 0), (1, 0), (0, 1)];
        for (int i = 0; i < set.Count; i++)
        {
            var v = ((IDataset)set).Load(i).Values;
            var (cx, cy) = cells[i];
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++)
                {
                    float[] expected = x < 32 ? [Signed(40 * cx + 10), Signed(100 * cy + 20), Signed(30)] : [1f, 1f, 1f];   // transparent → white
                    for (int c = 0; c < 3; c++)
                        Assert.That(v[c * 4096 + y * 64 + x], Is.EqualTo(expected[c]).Within(1e-6f), $"emoji {i} pixel ({x},{y}) channel {c}, sheet={sheet}");
                }
        }
        var small = EmojiDataset.Open(folder.Path, imageSize: 16);
        var s = ((IDataset)small).Load(0).Values;
        Assert.That(s[0], Is.EqualTo(Signed(10)).Within(1e-6f));
        Assert.That(s[15], Is.EqualTo(1f).Within(1e-6f));
    }

    [Test]
    public void BadIndexIsADataFormatError()
    {
        using var folder = new TempFolder();
        WriteMiniature(folder, sheet: true);
        File.WriteAllText(folder.File("emoji.json"), """[{"unified": "AA", "short_name": "a", "category": "X", "image": "a.png"}]""");
        Assert.That(() => EmojiDataset.Open(folder.Path), Throws.TypeOf<DataFormatException>().With.Message.Contains("emoji.json").And.Message.Contains("emoji 'a' has no 'sheet_x'"));
        File.WriteAllText(folder.File("emoji.json"), """[{"unified": "AA", "short_name": "a", "category": "X", "image": "a.png", "sheet_x": 9, "sheet_y": 0}]""");
        var set = EmojiDataset.Open(folder.Path);
        Assert.That(() => ((IDataset)set).Load(0), Throws.TypeOf<DataFormatException>().With.Message.Contains("cell (9, 0) lies outside the 198x132 sheet"));
    }

    [Test]
    public void RealTwemojiSheet()
    {
        string folder = RepositoryDataFolder();
        if (!File.Exists(Path.Combine(folder, "emoji.json")))
        {
            string reason = $"emoji data not present in {folder}; fetch it with {EmojiDataset.FetchCommand} to run this test";
            TestContext.Out.WriteLine(reason);
            Assert.Ignore(reason);
        }
        var clock = Stopwatch.StartNew();
        var set = EmojiDataset.Open(folder, imageSize: 64);
        Assert.That(set.Count, Is.EqualTo(1911), "base emoji of emoji-datasource-twitter 16.0.0");
        Assert.That(set.ClassNames, Does.Contain("Smileys & Emotion").And.Contain("Animals & Nature").And.Contain("Flags"));
        Assert.That(EmojiDataset.Open(folder, includeSkinVariations: true).Count, Is.EqualTo(3786));
        int grinning = set.Entries.ToList().FindIndex(e => e.Unified == "1F600");
        var face = ((IDataset)set).Load(grinning);
        Assert.That(set.ClassNames[face.Label], Is.EqualTo("Smileys & Emotion"));
        // Known pixel of twitter/64/1f600.png (checked against SkiaSharp when the data set was surveyed).
        float[] centre = [face.Values[32 * 64 + 32], face.Values[4096 + 32 * 64 + 32], face.Values[8192 + 32 * 64 + 32]];
        Assert.That(centre, Is.EqualTo(new[] { Signed(255), Signed(204), Signed(77) }).Within(1e-6f), "face yellow at (32, 32)");
        Assert.That(face.Values[0], Is.EqualTo(1f), "transparent corner composited on white");
        TestContext.Out.WriteLine($"{set.Count} emoji, {set.NumClasses} categories; opened and sampled in {clock.ElapsedMilliseconds} ms. {EmojiDataset.Credit}");
    }
}
