using System.Runtime.ExceptionServices;
using Mdm.Kernels.Collectives;

namespace Mdm.Train.Distributed;

/// <summary>
/// The bucket all-reduces started and not yet complete, oldest first. Open MPI moves a non-blocking collective only
/// inside MPI calls, and a bucket of more than a few KB crosses shared memory in many fragments, each needing a call
/// on both ranks: the backward's gradient reports alone come too seldom. So where the collective allows it
/// (MPI_THREAD_SERIALIZED), a background thread also polls, every millisecond while anything is in flight (sleeping,
/// so it takes no core from the backward). Every call on the operations is made under one lock.
/// </summary>
sealed class InFlightReductions : IDisposable
{
    readonly object gate = new();
    readonly Queue<PendingCollective> queue = new();
    readonly ManualResetEventSlim busy = new();
    readonly Thread? poller;
    ExceptionDispatchInfo? pollerFailure;
    volatile bool disposed;

    public InFlightReductions(bool pollInBackground)
    {
        if (!pollInBackground) return;
        poller = new Thread(PollWhileBusy) { IsBackground = true, Name = "gradient all-reduce progress" };
        poller.Start();
    }

    /// <summary>Operations that completed before <see cref="WaitAll"/> since the last call to it.</summary>
    public int CompletedEarly { get; private set; }

    public void Start(Func<PendingCollective> start)
    {
        lock (gate)
        {
            queue.Enqueue(start());
            busy.Set();
        }
    }

    public void Poll()
    {
        lock (gate)
        {
            pollerFailure?.Throw();
            PollHeld();
        }
    }

    /// <summary>Waits for every operation; returns how many had completed before.</summary>
    public int WaitAll()
    {
        lock (gate)
        {
            pollerFailure?.Throw();
            while (queue.Count > 0) queue.Dequeue().Wait();
            busy.Reset();
            int early = CompletedEarly;
            CompletedEarly = 0;
            return early;
        }
    }

    void PollHeld()
    {
        while (queue.Count > 0 && queue.Peek().Test())
        {
            queue.Dequeue();
            CompletedEarly++;
        }
        if (queue.Count == 0) busy.Reset();
    }

    void PollWhileBusy()
    {
        while (true)
        {
            busy.Wait();
            if (disposed) return;
            lock (gate)
            {
                if (pollerFailure is not null) { busy.Reset(); continue; }
                try { PollHeld(); }
                catch (Exception e) { pollerFailure = ExceptionDispatchInfo.Capture(e); busy.Reset(); }   // rethrown by the trainer's thread
            }
            Thread.Sleep(1);
        }
    }

    public void Dispose()
    {
        disposed = true;
        busy.Set();
        poller?.Join();
        busy.Dispose();
    }
}
