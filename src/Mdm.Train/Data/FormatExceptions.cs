namespace Mdm.Train.Data;

/// <summary>An image file is corrupt, truncated, unsupported or absurdly large. The message names the format, the file and the problem.</summary>
public sealed class ImageFormatException : Exception
{
    public string FileName { get; }

    public ImageFormatException(string source, string problem, Exception? inner = null, string format = "PNG")
        : base($"{format} '{source}': {problem}", inner) => FileName = source;
}

/// <summary>A data file (IDX, emoji.json, a data folder) is malformed or inconsistent. The message names the file.</summary>
public sealed class DataFormatException : Exception
{
    public string FileName { get; }

    public DataFormatException(string source, string problem, Exception? inner = null)
        : base($"'{source}': {problem}", inner) => FileName = source;
}
