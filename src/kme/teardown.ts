/**
 * What a starting service must undo, kept as it goes: each step added once its resource exists,
 * run last-added first. startKme runs it when a later step fails (a port taken, say), so that a
 * failed start leaves nothing listening, the store closed and the data_dir free; `stop` runs the
 * same list.
 */
export class Teardown {
  readonly #steps: Array<() => unknown> = [];

  add(step: () => unknown): void {
    this.#steps.push(step);
  }

  /** Runs every step, even after one fails; then throws the first failure, if any. */
  async run(): Promise<void> {
    let failure: { err: unknown } | undefined;
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      try {
        await step();
      } catch (err) {
        failure ??= { err };
      }
    }
    if (failure) throw failure.err;
  }
}
