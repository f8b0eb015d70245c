using Mdm.Tests.Cli;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Data;

/// <summary>`train --data shards:PATTERN` on a text-conditioned model, from the command line, and its resume.</summary>
[NonParallelizable]
public class ShardTrainingTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    /// <summary>The CLI tests' tiny NestedUNet 16 → 8, conditioned on 6-wide tokens (masked cross-attention) instead of classes.</summary>
    static readonly string TextConfig = TrainProcess.TinyRunConfig(steps: 4, checkpointEvery: 2)
        .Replace("\"numClasses\": 6", "\"conditioningFeatureDim\": 6, \"conditioningFeatureProjDim\": 8, \"maskedCrossAttention\": true", StringComparison.Ordinal);

    [Test]
    public void TextShardsTrainAndResumeToTheSameLosses()
    {
        var rng = TestSeed.NewRandom();
        using var dir = new TempFolder();
        var shards = Path.Combine(dir.Path, "shards");
        ShardFixtures.Write(shards, rng, [5, 4, 5]);
        var config = Path.Combine(dir.Path, "text.json");
        Assert.That(TextConfig, Does.Contain("conditioningFeatureDim"));
        File.WriteAllText(config, TextConfig);
        string data = "shards:" + Path.Combine(shards, "shard-{000..002}.tar");
        string[] flags = ["--config", config, "--data", data, "--sample-every", "0", "--seed", "3"];

        var whole = Path.Combine(dir.Path, "whole");
        var r = TrainProcess.Run(dir.Path, Timeout, ["train", "--out", whole, "--steps", "4", .. flags]);
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("(14 images)").And.Contain("data: ").And.Contain("waited"));
        Assert.That(File.ReadAllLines(Path.Combine(whole, "samples", "samples-captions.txt")), Has.Length.EqualTo(8).And.Contains("caption 0"));
        var expected = TrainProcess.Losses(Path.Combine(whole, "metrics.jsonl"));

        var split = Path.Combine(dir.Path, "split");
        var first = TrainProcess.Run(dir.Path, Timeout, ["train", "--out", split, "--steps", "2", .. flags]);
        Assert.That(first.Code, Is.EqualTo(0), first.Out + first.Err);
        var rest = TrainProcess.Run(dir.Path, Timeout, "train", "--out", split, "--resume", "--steps", "4");
        Assert.That(rest.Code, Is.EqualTo(0), rest.Out + rest.Err);
        Assert.That(TrainProcess.Losses(Path.Combine(split, "metrics.jsonl")), Is.EqualTo(expected), "a resumed run sees the same samples");

        var classes = TrainProcess.Run(dir.Path, Timeout, "train", "--config", config, "--data", "procedural", "--steps", "1", "--out", Path.Combine(dir.Path, "x"));
        Assert.That(classes.Code, Is.EqualTo(2), classes.Out + classes.Err);
        Assert.That(classes.Err, Does.Contain("the model is text-conditional").And.Contain("shards:PATTERN"));
    }
}
