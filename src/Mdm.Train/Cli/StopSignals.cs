using System.Runtime.InteropServices;

namespace Mdm.Train.Cli;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM (schedulers, docker stop) ask the run to stop after the current step: it saves a
/// checkpoint and exits 130 / 143. A second signal aborts at once; the checkpoints already on disk stay intact
/// (each is written to a temp file and renamed into place).
/// </summary>
public sealed class StopSignals : IDisposable
{
    readonly CancellationTokenSource stop = new();
    readonly PosixSignalRegistration[] registrations;
    readonly TextWriter log;
    readonly Action beforeAbort;
    int received;

    public StopSignals(TextWriter log, Action beforeAbort)
    {
        (this.log, this.beforeAbort) = (log, beforeAbort);
        registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)];
    }

    public CancellationToken Token => stop.Token;

    /// <summary>The exit code for the first signal received: 130 (SIGINT) or 143 (SIGTERM).</summary>
    public int ExitCode { get; private set; } = ExitCodes.Interrupted;

    void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        int code = context.Signal == PosixSignal.SIGTERM ? ExitCodes.Terminated : ExitCodes.Interrupted;
        string name = context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "SIGINT";
        if (Interlocked.Increment(ref received) == 1)
        {
            ExitCode = code;
            log.WriteLine($"{name}: stopping after this step and saving a checkpoint (send it again to abort at once)…");
            stop.Cancel();
            return;
        }
        log.WriteLine($"{name} again: aborting now; the checkpoints already written are intact (continue with --resume)");
        log.Flush();
        beforeAbort();
        Environment.Exit(code);
    }

    public void Dispose()
    {
        foreach (var r in registrations) r.Dispose();
        stop.Dispose();
    }
}
