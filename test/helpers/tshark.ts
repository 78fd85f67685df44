import { spawn } from 'node:child_process';

/**
 * Starts a tshark capture (`argv`: the command, e.g. `['tshark', '-i', 'lo', ...]` or the same
 * behind `ip netns exec NS`) and resolves once packets reach its file; `stop` ends it cleanly.
 */
export async function startTshark(argv: readonly string[]): Promise<{ stop(): Promise<void> }> {
  const tshark = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  await new Promise<void>((resolve, reject) => {
    tshark.stderr!.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.includes('Capturing on')) resolve();
    });
    tshark.once('exit', (code) => reject(new Error(`tshark exited (${code}): ${said.trim()}`)));
  });
  // tshark says so a moment before packets really reach the file.
  await new Promise((r) => setTimeout(r, 1000));
  return {
    stop: async () => {
      await new Promise((r) => setTimeout(r, 300)); // let the last packets reach the file
      await new Promise((resolve) => {
        tshark.once('exit', resolve);
        tshark.kill('SIGINT');
      });
    },
  };
}
