namespace Mdm.Model.Checkpoints;

/// <summary>A checkpoint or safetensors file is malformed. The message names the file and what is wrong with it.</summary>
public sealed class CheckpointFormatException : Exception
{
    public CheckpointFormatException(string file, string problem, Exception? inner = null)
        : base($"{file}: {problem}", inner)
    {
        File = file;
        Problem = problem;
    }

    /// <summary>The file (as the caller named it) that failed to parse.</summary>
    public string File { get; }
    /// <summary>What is wrong, without the file name.</summary>
    public string Problem { get; }
}
