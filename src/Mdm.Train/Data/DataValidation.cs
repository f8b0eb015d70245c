using System.Collections.Concurrent;

namespace Mdm.Train.Data;

/// <summary>A dataset read from files, one (or a folder of) file(s) per sample.</summary>
public interface IFileDataset : IDataset
{
    /// <summary>The file (or clip folder) sample <paramref name="index"/> comes from, for messages.</summary>
    string SourceOf(int index);
}

/// <summary>The samples of a file-backed set that cannot be read, found before training starts.</summary>
public sealed class BadDataException(string message, IReadOnlyList<(string Source, string Reason)> bad) : Exception(message)
{
    public IReadOnlyList<(string Source, string Reason)> Bad { get; } = bad;
}

/// <summary>
/// Reads every sample of a file-backed dataset once before step 1, so a truncated or unreadable file stops the run
/// before it starts (naming each file and the reason) instead of in the middle; or, when asked, leaves those out.
/// </summary>
public static class DataValidation
{
    const int Listed = 10;

    public static IDataset Check(IDataset data, string spec, bool skipBad, TextWriter log)
    {
        if (data is not IFileDataset files) return data;
        var bad = new ConcurrentBag<(int Index, string Reason)>();
        var text = data as ITextDataset;
        Parallel.For(0, data.Count, () => new float[data.SampleLength], (i, _, buffer) =>
        {
            try
            {
                data.LoadInto(i, buffer);
                text?.LoadText(i, new float[text.TokenLength * text.TextDim], new float[text.TokenLength]);
            }
            catch (Exception e) when (e is ImageFormatException or DataFormatException or IOException or UnauthorizedAccessException)
            { bad.Add((i, e.Message)); }
            return buffer;
        }, _ => { });
        if (bad.IsEmpty) return data;
        var sorted = bad.OrderBy(b => b.Index).Select(b => (Source: files.SourceOf(b.Index), b.Reason)).ToList();
        var list = string.Join("", sorted.Take(Listed).Select(b => $"\n  {b.Source}: {b.Reason}")) +
                   (sorted.Count > Listed ? $"\n  … and {sorted.Count - Listed} more" : "");
        if (!skipBad)
            throw new BadDataException($"--data {spec}: {sorted.Count} of {data.Count} samples cannot be read (first: {sorted[0].Source}); " +
                                       $"fix or remove them, or pass --skip-bad-data to train without them:{list}", sorted);
        if (sorted.Count == data.Count) throw new BadDataException($"--data {spec}: none of the {data.Count} samples can be read:{list}", sorted);
        log.WriteLine($"--skip-bad-data: leaving out {sorted.Count} of {data.Count} samples:{list}");
        var keep = Enumerable.Range(0, data.Count).Except(bad.Select(b => b.Index)).ToArray();
        return new SubsetDataset(data, keep);
    }
}

/// <summary>Some samples of another dataset, in the given order.</summary>
public sealed class SubsetDataset(IDataset inner, int[] indices) : IDataset
{
    public int Count => indices.Length;
    public IReadOnlyList<int> SampleShape => inner.SampleShape;
    public int NumClasses => inner.NumClasses;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;

    public int LoadInto(int index, Span<float> destination)
    {
        DatasetChecks.Index(this, index);
        return inner.LoadInto(indices[index], destination);
    }
}
