import type { IntegrationKind, IntegrationReport, IntegrationState } from '../domain/integration-report.js';

/** The part of the SDK a reporter needs (`KmeClient.reportIntegration`). */
export interface ReportSink {
  reportIntegration(report: IntegrationReport): Promise<unknown>;
}

export interface IntegrationReporterOptions {
  readonly kme: ReportSink;
  readonly kind: IntegrationKind;
  readonly name: string;
  readonly peer: string;
  /** A report goes out on every change and at least this often (default 30 s), so the KME knows it is alive. */
  readonly intervalMs?: number;
  /** Told when a report could not be delivered; the agent goes on regardless. */
  readonly onError?: (err: Error) => void;
}

/**
 * Keeps an integration agent's KME told what it is doing, for the operator dashboard: the key ID
 * in use, when the next key takes over, and its state. Reports are best effort: a KME that does
 * not take them never stops the tunnel. Key IDs only, never key material.
 */
export class IntegrationReporter {
  readonly #opts: IntegrationReporterOptions;
  #report: IntegrationReport;
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> = Promise.resolve();
  #again = false;

  constructor(opts: IntegrationReporterOptions) {
    this.#opts = opts;
    this.#report = {
      kind: opts.kind,
      name: opts.name,
      peer: opts.peer,
      key_ID: null,
      rotates_at: null,
      state: 'starting',
    };
  }

  get current(): IntegrationReport {
    return this.#report;
  }

  start(): void {
    this.#timer = setInterval(() => this.#send(), this.#opts.intervalMs ?? 30_000);
    this.#timer.unref();
    this.#send();
  }

  update(change: { keyId?: string | null; rotatesAt?: number | null; state?: IntegrationState }): void {
    this.#report = {
      ...this.#report,
      ...(change.keyId !== undefined ? { key_ID: change.keyId } : {}),
      ...(change.rotatesAt !== undefined ? { rotates_at: change.rotatesAt } : {}),
      ...(change.state ? { state: change.state } : {}),
    };
    this.#send();
  }

  /** Reports `down` (best effort) and stops reporting. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#report = { ...this.#report, state: 'down', rotates_at: null };
    this.#send(true);
    await this.#sending;
  }

  /** One report at a time; changes made meanwhile go out together right after. */
  #send(final = false): void {
    if (!final && this.#timer === undefined) return;
    if (this.#again) return;
    this.#again = true;
    this.#sending = this.#sending.then(async () => {
      this.#again = false;
      try {
        await this.#opts.kme.reportIntegration(this.#report);
      } catch (err) {
        this.#opts.onError?.(err as Error);
      }
    });
  }
}
