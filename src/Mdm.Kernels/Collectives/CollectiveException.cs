namespace Mdm.Kernels.Collectives;

/// <summary>A collective could not start or failed: the message is one line naming what is missing or which call
/// failed on which rank.</summary>
public sealed class CollectiveException(string message) : Exception(message);
