using Broker.Server.Configuration;
using Microsoft.Extensions.Options;

namespace Broker.Server.Logging;

/// <summary>What an operator needs of the node's log at run time: recent lines in memory and a level switch.</summary>
public static class LogControlSetup
{
    public static WebApplicationBuilder AddLogControl(this WebApplicationBuilder builder, LoggingSettings settings)
    {
        var memory = new MemoryLog(settings.MemoryLines, settings.MemoryMaxLine);
        builder.Services.AddSingleton(memory);
        builder.Services.AddSingleton<ILoggerProvider>(memory);
        var level = new LogLevelSwitch();
        builder.Services.AddSingleton(level);
        builder.Services.AddSingleton<IOptionsChangeTokenSource<LoggerFilterOptions>>(level);
        builder.Services.AddSingleton<IPostConfigureOptions<LoggerFilterOptions>>(level);
        return builder;
    }
}
