namespace Mdm.Train.Training;

/// <summary>`convert`: an ml-mdm model YAML to an Mdm run config (see docs).</summary>
public static class ConvertCommand
{
    public static int Run(string yamlPath, string? outPath, TextWriter output) => MlMdmYaml.Convert(yamlPath, outPath, output);
}
