// The `log` option every backend takes: a plain function, or a pino-like logger.
export type BackendLog =
  | ((msg: string, obj?: Record<string, unknown>) => void)
  | { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };

export type LogAt = (level: 'info' | 'warn', msg: string, obj?: Record<string, unknown>) => void;

/** One call shape for either kind of `log`; without one, nothing is logged. */
export function backendLogger(log: BackendLog | undefined): LogAt {
  return (level, msg, obj = {}) => {
    if (typeof log === 'function') log(msg, obj);
    else if (log) log[level](obj, msg);
  };
}
