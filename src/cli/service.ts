import { spawn } from 'node:child_process';

/**
 * Tells systemd (a `Type=notify` unit, packaging/systemd/) that the command is ready: its KME
 * listens, its tunnel accepts. Node has no Unix datagram sockets, so the notice goes through
 * `systemd-notify`, a child: the units set `NotifyAccess=all` for it. Nothing happens outside systemd.
 */
export function notifyReady(): void {
  if (!process.env['NOTIFY_SOCKET']) return;
  const child = spawn('systemd-notify', ['--ready', `--pid=${process.pid}`], { stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
}
