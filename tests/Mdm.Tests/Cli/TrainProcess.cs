using System.Diagnostics;
using System.Text.Json;

namespace Mdm.Tests.Cli;

/// <summary>Runs the real Mdm.Train executable (built next to the tests) as a child process.</summary>
public static class TrainProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "Mdm.Train.dll");

    /// <summary>A tiny run config: NestedUNet 16 → 8, a few steps, a checkpoint every step.</summary>
    public static string TinyRunConfig(int steps, int checkpointEvery = 1) => $$"""
        {
          "model": {
            "imageSize": 16, "imageChannels": 3,
            "nested": {
              "outer": { "resolutionChannels": [8, 8], "numResnetsPerResolution": [1], "attentionLevels": [], "numAttentionLayers": [0],
                         "temporalDim": 32, "microConditioning": "scale:16", "groups": 4, "attentionGroups": 4 },
              "skipNormalization": true,
              "innerUnet": { "resolutionChannels": [8, 16], "numResnetsPerResolution": [1], "attentionLevels": [1], "numAttentionLayers": [1],
                             "temporalDim": 32, "microConditioning": "scale:8", "numClasses": 6, "groups": 4, "attentionGroups": 4 }
            }
          },
          "training": { "lr": 1e-3, "warmupSteps": 2, "batch": 4, "steps": {{steps}}, "checkpointEvery": {{checkpointEvery}},
                        "emaDecay": 0.99, "emaWarmup": true, "labelDropout": 0.25 }
        }
        """;

    public static Process Start(string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["MDM_DEVICE"] = "cpu";
        return Process.Start(psi)!;
    }

    /// <summary>Runs to the end and returns (exit code, stdout, stderr), failing after a timeout.</summary>
    public static (int Code, string Out, string Err) Run(string workDir, TimeSpan timeout, params string[] args)
    {
        using var p = Start(workDir, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"Mdm.Train {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s\n{stdout.Result}\n{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>(step, loss) of every logged step, in order (later lines for the same step replace earlier ones).</summary>
    public static SortedDictionary<long, double> Losses(string metricsPath)
    {
        var r = new SortedDictionary<long, double>();
        foreach (var line in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            r[root.GetProperty("step").GetInt64()] = root.GetProperty("loss").GetDouble();
        }
        return r;
    }
}
