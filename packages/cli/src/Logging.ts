/**
 * Logs a person can read (pretty, to stderr) and JSON logs a machine can (one object per line).
 *
 * @since 0.1.0
 */
import { Layer, Logger, LogLevel } from "effect"

const levels = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error
} as const

export const layer = (options: {
  readonly level: keyof typeof levels
  readonly format: "pretty" | "json"
}): Layer.Layer<never> =>
  Layer.merge(
    options.format === "json"
      ? Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.jsonLogger))
      : Logger.replace(
          Logger.defaultLogger,
          Logger.prettyLogger({ stderr: true, colors: "auto", mode: "tty" })
        ),
    Logger.minimumLogLevel(levels[options.level])
  )
