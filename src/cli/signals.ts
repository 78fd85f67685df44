/**
 * Resolves on the first SIGINT or SIGTERM. Signals that follow are ignored while the command stops:
 * Ctrl-C under `npm run` arrives twice (from the terminal, and forwarded by npm), and the second
 * must not cut the clean-up short (a demo's temporary keys left on disk). A third forces the exit.
 */
export function untilSignal(signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      seen += 1;
      if (seen === 1) resolve(signal);
      if (seen >= 3) process.exit(130);
    };
    for (const signal of signals) process.on(signal, onSignal);
  });
}

/**
 * SIGHUP means one thing to every long-running qks command: reload what it can (a KME's SAE list) and
 * rotate where it rotates (initiators, tunnel clients); it never stops one. `main` keeps a listener
 * of its own, so that a command with nothing to reload does not die of it. Returns what removes `action`.
 */
export function onHangup(action: () => unknown): () => void {
  const listener = () =>
    void Promise.resolve()
      .then(action)
      .catch(() => undefined);
  process.on('SIGHUP', listener);
  return () => void process.off('SIGHUP', listener);
}
