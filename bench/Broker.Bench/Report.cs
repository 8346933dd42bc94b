namespace Broker.Bench;

public static class Report
{
    public static int Run(string[] args) => 0;
}
