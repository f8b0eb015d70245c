using Mdm.Tests.Harness;
using NUnit.Framework.Internal;

namespace Mdm.Tests.Core;

/// <summary>The comparison helper itself: it must fail on poison (NaN), on errors over budget, and pass within budget.</summary>
public class CompareTests
{
    static string? FailureOf(Action a)
    {
        using (new TestExecutionContext.IsolatedContext())
        {
            try { a(); return null; }
            catch (AssertionException e) { return e.Message; }
        }
    }

    [Test]
    public void UnwrittenPoisonFails()
    {
        var msg = FailureOf(() => Compare.AssertClose("poison", new[] { 1f, float.NaN, 3f }, new[] { 1.0, 2.0, 3.0 }, Tolerance.F32Elementwise));
        Assert.That(msg, Does.Contain("[1]").And.Contain("seed"));
    }

    [Test]
    public void ErrorOverBudgetFailsAndReportsBudget()
    {
        var msg = FailureOf(() => Compare.AssertClose("budget", new[] { 1f, 2.001f }, new[] { 1.0, 2.0 }, new Tolerance(1e-6, 1e-5)));
        Assert.That(msg, Does.Contain("error budget").And.Contain("max abs error"));
    }

    [Test]
    public void StopsAfterTenMismatches()
    {
        var msg = FailureOf(() => Compare.AssertClose("many", new float[50], Enumerable.Repeat(1.0, 50).ToArray(), Tolerance.F32Elementwise));
        Assert.That(msg, Does.Contain("stopping after 10"));
        Assert.That(msg!.Split('\n').Count(l => l.Contains("got")), Is.EqualTo(5), "prints the first 5 mismatches");
    }

    [Test]
    public void WithinBudgetPasses() =>
        Assert.That(FailureOf(() => Compare.AssertClose("ok", new[] { 1f, 2.00001f }, new[] { 1.0, 2.0 }, new Tolerance(1e-6, 1e-5))), Is.Null);
}
